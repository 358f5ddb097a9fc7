"""The generated per-flag checks (rollout._core.specialize) agree with the rules read plainly."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Feature, Rollout, UnknownFlagError
from rollout._core.bucketing import bucket_seed, randomized_bucket, ruby_bucket
from rollout.testing import FakeClock

USERS = [str(i) for i in range(1, 40)]
GROUPS = ["all", "admins", "staff", "broken", "undefined"]


@dataclass(frozen=True)
class User:
    id: int


def admins(user: Any) -> bool:
    return int(user.id if isinstance(user, User) else user) % 3 == 0


def staff(user: Any) -> bool:
    return int(user.id if isinstance(user, User) else user) % 5 == 0


def broken(user: Any) -> bool:
    raise RuntimeError("this predicate is broken")


PREDICATES = {"admins": admins, "staff": staff, "broken": broken}

writes = st.one_of(
    st.tuples(st.sampled_from(["activate", "deactivate"]), st.just(())),
    st.tuples(
        st.sampled_from(["activate_user", "deactivate_user", "exclude_user", "include_user"]),
        st.tuples(st.sampled_from(USERS)),
    ),
    st.tuples(
        st.sampled_from(["activate_group", "deactivate_group"]), st.tuples(st.sampled_from(GROUPS))
    ),
    st.tuples(
        st.just("activate_percentage"),
        st.tuples(st.sampled_from([0, 0.5, 10, 20, 33.3, 99, 100])),
    ),
    # Only 0 and 100: between them the answer is random, and so not comparable.
    st.tuples(st.just("activate_percentage_of_time"), st.tuples(st.sampled_from([0, 100]))),
)


def expected(feature: Feature, uid: str, user: object, randomize: Any) -> bool:
    """The evaluation order (README, "Evaluation, in order"), step by step, from the snapshot."""
    if uid in feature.excluded_users:
        return False
    if feature.percentage_of_time >= 100:
        return True
    if uid in feature.users:
        return True
    for group in feature.groups:
        if group == "all":
            return True
        predicate = PREDICATES.get(group)
        try:
            if predicate is not None and predicate(user):
                return True
        except RuntimeError:
            pass
    if randomize is False:
        bucket = ruby_bucket(uid)
    elif randomize is True:
        bucket = randomized_bucket(uid, bucket_seed(feature.name))
    else:
        bucket = ruby_bucket(uid, feature.name, randomize=True)
    if feature.percentage >= 100:
        return True
    return bucket < math.ceil((2**32 - 1) / 100.0 * feature.percentage)


@settings(max_examples=300, deadline=None)
@given(
    script=st.lists(writes, min_size=1, max_size=12),
    randomize=st.sampled_from([False, True, "ruby"]),
)
def test_every_flag_shape_answers_as_the_design_says(script: Any, randomize: Any) -> None:
    flags = Rollout(clock=FakeClock(), randomize_percentage=randomize)
    for group, predicate in PREDICATES.items():
        flags.define_group(group, predicate)
    for method, args in script:
        # A removal from the flag before anything created it is refused, changing nothing.
        with contextlib.suppress(UnknownFlagError):
            getattr(flags, method)("flag", *args)
    feature = flags.get("flag")
    for uid in USERS:
        want = expected(feature, uid, User(int(uid)), randomize)
        assert flags.active("flag", User(int(uid))) is want, (uid, feature.to_dict())
        assert flags.active("flag", uid) is expected(feature, uid, uid, randomize)
        assert flags.active("flag", int(uid)) is expected(feature, uid, int(uid), randomize)
    without_user = feature.percentage >= 100 or feature.percentage_of_time >= 100
    assert flags.active("flag") is without_user
