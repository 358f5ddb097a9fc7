"""rollout._core.rules: one meaning per question about a flag, and explanations that fit."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout, UnknownFlagError
from rollout._core.rules import (
    Rules,
    on_for_anybody,
    on_for_everybody,
    on_without_a_user,
    state,
)

from .test_evaluation_properties import PREDICATES, USERS, writes


def test_the_three_states(flags: Rollout) -> None:
    assert state(flags.get("never")) == "off"
    flags.activate_user("chat", 42)
    assert state(flags.get("chat")) == "partial"
    flags.activate("chat")
    assert state(flags.get("chat")) == "on"
    flags.exclude_user("chat", 7)  # on without a user, but not for everybody
    assert on_without_a_user(flags.get("chat"))
    assert not on_for_everybody(flags.get("chat"))
    assert state(flags.get("chat")) == "partial"


def test_exclusions_alone_turn_nothing_on(flags: Rollout) -> None:
    flags.exclude_user("chat", 7)
    assert not on_for_anybody(flags.get("chat"))
    assert state(flags.get("chat")) == "off"
    flags.activate_percentage_of_time("chat", 1)
    assert on_for_anybody(flags.get("chat"))
    assert not on_without_a_user(flags.get("chat"))


@settings(max_examples=300)
@given(script=st.lists(writes, max_size=12), user=st.sampled_from([None, *USERS]))
def test_what_the_rules_settle_is_what_explain_says(
    script: list[tuple[str, tuple[Any, ...]]], user: str | None
) -> None:
    # The facts that let the OpenFeature provider skip flags.explain() (STATIC, DISABLED, a
    # split that needs a user) agree with explain(), the one source of "why".
    logging.getLogger("rollout").disabled = True  # the broken predicate logs on every call
    try:
        with Rollout() as flags:
            for name, predicate in PREDICATES.items():
                flags.define_group(name, predicate)
            for method, args in script:
                # A removal from the flag before anything created it is refused, changing nothing.
                with contextlib.suppress(UnknownFlagError):
                    getattr(flags, method)("chat", *args)
            rules = Rules(flags.get("chat"))
            explanation = flags.explain("chat", user)
            check = flags._checks.get("chat")
    finally:
        logging.getLogger("rollout").disabled = False
    # The compiled check of the same version settles the same (what evaluate() reads).
    if check is not None:
        assert check.settled is (True if rules.static else False if rules.disabled else None)
    if rules.static:
        assert explanation.active
        assert explanation.reason in {"everybody", "percentage_of_time"}
    if rules.disabled:
        assert not explanation.active
        assert explanation.reason in {"off", "no_user", "excluded", "unknown_flag"}
    if rules.needs_key and user is None:
        assert not explanation.active or explanation.reason == "percentage_of_time"
