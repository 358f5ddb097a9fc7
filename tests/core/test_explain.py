"""``flags.explain``: the rule that decided, and an answer that is always ``active()``'s."""

from __future__ import annotations

import contextlib
import random
from contextlib import nullcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Explanation, Rollout, UnknownFlagError
from rollout._core.bucketing import threshold
from rollout.testing import FakeClock

from .test_evaluation_properties import PREDICATES, USERS, User, writes

# Any percentage of the time, not only 0 and 100: explain reports its draw, and with the global
# generator seeded alike, active() and explain() take the same draw.
any_writes = st.one_of(
    writes,
    st.tuples(
        st.just("activate_percentage_of_time"),
        st.tuples(st.sampled_from([0, 0.5, 25, 50, 99.9, 100])),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    script=st.lists(any_writes, min_size=1, max_size=12),
    randomize=st.sampled_from([False, True, "ruby"]),
    seed=st.integers(0, 2**32),
    overridden=st.sampled_from([None, True, False]),
)
def test_explain_agrees_with_active_on_every_input(
    script: Any, randomize: Any, seed: int, overridden: bool | None
) -> None:
    flags = Rollout(clock=FakeClock(), randomize_percentage=randomize)
    for group, predicate in PREDICATES.items():
        flags.define_group(group, predicate)
    for method, args in script:
        # A removal from the flag before anything created it is refused, changing nothing.
        with contextlib.suppress(UnknownFlagError):
            getattr(flags, method)("flag", *args)
    # Ids a write refuses still get an answer from a check, and explain must give the same:
    # empty, a lone surrogate, bytes that were not UTF-8 (surrogateescape).
    users: list[object] = [None, "unknown-user", "", "\ud800", "caf\udce9-42"]
    for uid in USERS:
        users += [uid, int(uid), User(int(uid))]
    with flags.override("flag", overridden) if overridden is not None else nullcontext():
        for name in ("flag", "missing"):
            for user in users:
                random.seed(seed)
                want = flags.active(name, user)
                random.seed(seed)
                why = flags.explain(name, user)
                assert why.active is want, (name, user, why, flags.get("flag").to_dict())
                if overridden is not None and name == "flag":
                    assert why.reason == "override"
                if why.draw is not None:
                    random.seed(seed)
                    assert why.draw == random.random() * 100.0


def test_each_rule_is_named_with_its_numbers() -> None:
    flags = Rollout(clock=FakeClock())
    flags.define_group("admins", lambda user: user.id % 3 == 0)
    assert flags.explain("nope", 1) == Explanation(
        "nope", "1", False, "unknown_flag", "off: no flag named 'nope'"
    )
    flags.activate_percentage("chat", 10)
    flags.activate_user("chat", 7)
    flags.exclude_user("chat", 8)
    flags.activate_group("chat", "admins")

    listed = flags.explain("chat", User(7))
    assert (listed.active, listed.reason, listed.user) == (True, "listed", "7")
    excluded = flags.explain("chat", User(8))
    assert (excluded.active, excluded.reason) == (False, "excluded")
    group = flags.explain("chat", User(3))
    assert (group.active, group.reason, group.group) == (True, "group", "admins")

    # User 1's CRC32 bucket is 2212294583: above 10% (429496730), below 60%.
    out = flags.explain("chat", User(1))
    assert (out.active, out.reason, out.bucket, out.threshold) == (
        False,
        "bucket",
        2212294583,
        threshold(10),
    )
    assert out.bucketing == "crc32"
    assert out.percentage == 10.0
    assert out.message == "off: bucket 2212294583 is not below 429496730 (10% of users)"
    flags.activate_percentage("chat", 60)
    within = flags.explain("chat", User(1))
    assert (within.active, within.reason, within.bucket) == (True, "bucket", 2212294583)

    flags.activate_group("chat", "all")
    assert flags.explain("chat", User(1)).reason == "everybody"
    assert flags.explain("chat").reason == "no_user"

    flags.activate_percentage_of_time("chat", 100)
    anonymous = flags.explain("chat")
    assert (anonymous.active, anonymous.reason, anonymous.draw) == (True, "everybody", None)
    assert flags.explain("chat", User(1)).reason == "percentage_of_time"
    with flags.override("chat", False):
        forced = flags.explain("chat", User(1))
        assert (forced.active, forced.reason) == (False, "override")
    assert flags.explain("chat", User(1)).to_dict()["reason"] == "percentage_of_time"


def test_a_bad_user_is_an_error_naming_it() -> None:
    flags = Rollout(clock=FakeClock())
    with pytest.raises((TypeError, ValueError), match="user"):
        flags.explain("chat", 1.5)
