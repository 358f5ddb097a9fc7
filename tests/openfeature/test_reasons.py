"""Property: every boolean the provider gives is ``flags.active()``, with the documented reason.

The expected reason comes from a small model of the check written from the README's evaluation
order (exclusions, 100%, listed users, the user's bucket, groups), not from the provider's code.
Flags change between checks, so the provider's per-flag cache is exercised too.
"""

from __future__ import annotations

from typing import Any
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
    if pct >= 100 or "all" in groups or key in users:
        return True, Reason.TARGETING_MATCH
    if pct and crc32(key.encode()) < threshold(pct):
        return True, Reason.SPLIT
    if "pro" in groups and key in PRO:
        return True, Reason.TARGETING_MATCH
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


METADATA_TYPES = {
    "rule": str,
    "percentage": float,
    "percentage_of_time": float,
    "bucket": int,
    "threshold": int,
    "bucketing": str,
    "group": str,
    "draw": float,
}


@given(states=st.lists(flag_states, min_size=1, max_size=3))
def test_flag_metadata_is_the_explanation_with_one_type_per_key(
    states: list[dict[str, object]],
) -> None:
    with Rollout() as flags:
        flags.define_group("pro", lambda user: user.attributes.get("pro", False))
        provider = RolloutProvider(flags)
        for state in states:
            write(flags, state)
            # A data entry under an explanation's name is not metadata: its type could differ.
            flags.set_feature_data("chat", {"bucket": "x", "owner": "web"})
            for key in KEYS:
                context = EvaluationContext(key, {"pro": key in PRO})
                details = provider.resolve_boolean_details("chat", False, context)
                metadata = dict(details.flag_metadata or {})
                assert metadata.pop("owner") == "web"
                if details.reason in (Reason.STATIC, Reason.DISABLED):
                    assert metadata == {}  # settled by the flag alone: nothing to explain
                    continue
                explanation = flags.explain("chat", ContextUser(context))
                assert metadata.pop("rule") == explanation.reason
                for name, kind in METADATA_TYPES.items():
                    if name == "rule":
                        continue
                    if name in metadata:
                        assert type(metadata[name]) is kind, (name, metadata)
                        assert metadata[name] == getattr(explanation, name), name
                    else:
                        assert getattr(explanation, name) is None, name


def test_a_context_without_a_targeting_key_is_asked_to_its_groups() -> None:
    with Rollout() as flags:
        seen: list[object] = []

        def pro(user: Any) -> bool:
            seen.append(user)
            return bool(user.plan == "pro")

        flags.define_group("pro", pro)
        flags.activate_group("chat", "pro")
        provider = RolloutProvider(flags)
        details = provider.resolve_boolean_details(
            "chat", False, EvaluationContext(None, {"plan": "pro"})
        )
        assert (details.value, details.reason) == (True, Reason.TARGETING_MATCH)
        assert details.flag_metadata == {
            "rule": "group",
            "group": "pro",
            "percentage": 0.0,
            "percentage_of_time": 0.0,
        }
        assert isinstance(seen[-1], ContextUser)
        assert seen[-1].id is None
        free = provider.resolve_boolean_details(
            "chat", True, EvaluationContext(None, {"plan": "free"})
        )
        assert (free.value, free.reason) == (False, Reason.DEFAULT)
        # An empty context has nothing for a predicate to read: it is not asked.
        count = len(seen)
        empty = provider.resolve_boolean_details("chat", True, EvaluationContext())
        assert (empty.value, empty.reason, len(seen)) == (False, Reason.DEFAULT, count)
        # With a percentage too, a group's yes needs no key; its no still does.
        flags.activate_percentage("chat", 30)
        details = provider.resolve_boolean_details(
            "chat", False, EvaluationContext(None, {"plan": "pro"})
        )
        assert (details.value, details.reason) == (True, Reason.TARGETING_MATCH)
        free = provider.resolve_boolean_details(
            "chat", True, EvaluationContext(None, {"plan": "free"})
        )
        assert free.error_code == ErrorCode.TARGETING_KEY_MISSING
