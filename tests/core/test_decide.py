"""The per-flag decision functions (rollout._core.decide) decide what explain's walk decides."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout, UnknownFlagError
from rollout._core.decide import specialize_resolution
from rollout._core.explain import Decision, decide_check
from rollout._core.feature import Check
from rollout.testing import FakeClock

from .test_evaluation_properties import PREDICATES, USERS, User
from .test_explain import any_writes


class Result:
    """What a resolution function fills."""

    __slots__ = ("_bucket", "_decision", "_view", "reason", "value", "variant")

    _bucket: int
    _decision: Decision
    _view: object
    reason: str
    value: bool
    variant: str


REASONS = {reason: reason.upper() for reason in ("excluded", "percentage_of_time", "everybody")}
REASONS |= {reason: reason.upper() for reason in ("listed", "bucket", "group", "off")}


def _resolution(flags: Rollout, check: Check) -> tuple[Callable[[str, Any], Result], object]:
    """The check's resolution function, filling a Result, and the view it puts in it."""
    view = object()
    resolve = specialize_resolution(
        check,
        flags._group_failed,
        result=Result,
        view=view,
        reasons=REASONS,
        on_variant="yes",
        off_variant="no",
    )
    return resolve, view


def _flags(randomize: Any) -> Rollout:
    flags = Rollout(clock=FakeClock(), randomize_percentage=randomize)
    for group, predicate in PREDICATES.items():
        flags.define_group(group, predicate)
    return flags


@settings(max_examples=300, deadline=None)
@given(
    script=st.lists(any_writes, min_size=1, max_size=12),
    randomize=st.sampled_from([False, True, "ruby"]),
    seed=st.integers(0, 2**32),
)
def test_a_flags_decision_and_resolution_functions_decide_as_explain_walks(
    script: Any, randomize: Any, seed: int
) -> None:
    flags = _flags(randomize)
    for method, args in script:
        with contextlib.suppress(UnknownFlagError):
            getattr(flags, method)("flag", *args)
    check = flags._checks.get("flag")
    if check is None:
        return
    resolve, view = _resolution(flags, check)
    # Ids a write refuses still get a decision: empty, a lone surrogate, undecodable bytes.
    for uid in [*USERS, "unknown-user", "", "\ud800", "caf\udce9-42"]:
        for user in (uid, User(int(uid)) if uid.isdigit() else uid):
            random.seed(seed)
            want = decide_check(check, uid, user, flags._explain_group, random.random)
            random.seed(seed)
            assert flags._decision(check, uid, user) == want, (uid, flags.get("flag"))
            random.seed(seed)
            got = resolve(uid, user)  # the same decision, in a result
            decision = got._decision
            if hasattr(got, "_bucket"):  # the flag's template: the bucket is the user's
                assert decision[5] is None
                decision = (*decision[:5], got._bucket, *decision[6:])
            assert decision == want
            assert (got.value, got.reason, got._view) == (want[0], want[1].upper(), view)
            assert got.variant == ("yes" if want[0] else "no")


def test_more_groups_than_are_unrolled_are_asked_in_order() -> None:
    flags = _flags(False)
    names = [f"g{i:02}" for i in range(12)]
    for index, name in enumerate(names):
        flags.define_group(name, lambda user, index=index: user.id % 12 == index)
        flags.activate_group("wide", name)
    flags.activate_group("wide", "broken")  # raises: says no, counted as the check counts it
    resolve, _ = _resolution(flags, flags._checks["wide"])
    for uid in range(24):
        user = User(uid)
        decision = flags._decision(flags._checks["wide"], str(uid), user)
        assert decision == decide_check(
            flags._checks["wide"], str(uid), user, flags._explain_group, random.random
        )
        assert resolve(str(uid), user)._decision == decision
        assert decision is not None
        assert decision[:2] == (True, "group")
        assert decision[4] == names[uid % 12]


def test_a_predicate_that_raises_says_no_and_is_counted() -> None:
    flags = _flags(False)
    flags.activate_group("chat", "broken")
    decision = flags._decision(flags._checks["chat"], "7", User(7))
    assert decision is not None
    assert decision[:2] == (False, "off")
    assert flags.stats()["group_errors"] == 1
