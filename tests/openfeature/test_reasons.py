"""Property: every boolean the provider gives is ``flags.active()``, with the documented reason.

The expected reason comes from a small model of the check written from the README's evaluation
order (exclusions, 100%, listed users, groups, the user's bucket), not from the provider's code.
Flags change between checks, so the provider's per-flag cache is exercised too.
"""

from __future__ import annotations

from zlib import crc32

from hypothesis import given
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from rollout import Feature, Rollout
from rollout._core.bucketing import threshold
from rollout.openfeature import ContextUser, RolloutProvider

KEYS = [f"u{i}" for i in range(12)]
PRO = {"u0", "u1", "u5", "u8"}

flag_states = st.fixed_dictionaries(
    {
        "percentage": st.sampled_from([0, 10, 50, 100]),
        "users": st.sets(st.sampled_from(KEYS), max_size=4),
        "excluded": st.sets(st.sampled_from(KEYS), max_size=3),
        "groups": st.sets(st.sampled_from(["all", "pro", "undefined"]), max_size=2),
    }
)


def expected(feature: Feature, key: str | None) -> tuple[bool, Reason] | ErrorCode:
    pct, users, groups = feature.percentage, feature.users, feature.groups
    if not (pct or users or groups):
        return False, Reason.DISABLED
    if pct >= 100 and not feature.excluded_users:
        return True, Reason.STATIC
    if key is None:
        if 0 < pct < 100:
            return ErrorCode.TARGETING_KEY_MISSING
        return (True, Reason.TARGETING_MATCH) if pct >= 100 else (False, Reason.DEFAULT)
    if key in feature.excluded_users:
        return False, Reason.TARGETING_MATCH
    if pct >= 100 or key in users or "all" in groups or ("pro" in groups and key in PRO):
        return True, Reason.TARGETING_MATCH
    if pct and crc32(key.encode()) < threshold(pct):
        return True, Reason.SPLIT
    return False, Reason.SPLIT if pct else Reason.DEFAULT


def write(flags: Rollout, state: dict[str, object]) -> None:
    flags.set("chat", False)  # the state from scratch (set: the first time, the flag is new)
    flags.activate_percentage("chat", state["percentage"])  # type: ignore[arg-type]
    flags.set_users("chat", state["users"])  # type: ignore[arg-type]
    flags.exclude_users("chat", state["excluded"])  # type: ignore[arg-type]
    for group in state["groups"]:  # type: ignore[attr-defined]
        flags.activate_group("chat", group)


@given(states=st.lists(flag_states, min_size=1, max_size=3))
def test_2_2_3_and_2_2_5_value_is_active_and_reason_follows_the_check_order(
    states: list[dict[str, object]],
) -> None:
    with Rollout() as flags:
        flags.define_group("pro", lambda user: user.attributes.get("pro", False))
        provider = RolloutProvider(flags)
        provider.initialize(EvaluationContext())
        for state in states:
            write(flags, state)
            feature = flags.get("chat")
            for key in [None, *KEYS]:
                context = EvaluationContext(key, {"pro": key in PRO})
                details = provider.resolve_boolean_details("chat", key == "u3", context)
                want = expected(feature, key)
                if isinstance(want, ErrorCode):
                    assert details.error_code == want
                    continue
                user = key if key is None else ContextUser(context)
                assert details.value is flags.active("chat", user)
                assert (details.value, details.reason) == want, (key, feature)
        provider.shutdown()
