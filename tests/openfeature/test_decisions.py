"""Property: the provider's fast path answers what ``flags.explain`` says, field for field.

The provider no longer builds an explanation per targeted evaluation: it asks for the
explanation's decision without its words, and answers a flag that is the same for every context
with one shared resolution. The oracle here is the public explanation itself, translated by the
table of docs/openfeature.md (written out again here, not imported): for every flag shape
(percentages of users and of time, listed, excluded, the group ``all``, a group in code, a
named rule, an undefined group, every bucketing), every user and every resolve_* type, the
value, reason, variant and flag metadata must be the explanation's. The draw of a percentage of
time is made the same for both by seeding ``random`` before each.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason

from rollout import Rollout
from rollout.openfeature import ContextUser, RolloutProvider

KEYS = [f"u{i}" for i in range(10)]
PRO = {"u0", "u3", "u7"}
DATA = {"owner": "web", "bucket": "not metadata: an explanation's key"}

# The explanation's reason in OpenFeature's words (docs/openfeature.md, "Reasons").
REASONS = {
    "excluded": Reason.TARGETING_MATCH,
    "percentage_of_time": Reason.SPLIT,
    "everybody": Reason.TARGETING_MATCH,
    "listed": Reason.TARGETING_MATCH,
    "bucket": Reason.SPLIT,
    "group": Reason.TARGETING_MATCH,
    "off": Reason.DEFAULT,
}
NUMBERS = ("bucket", "threshold", "bucketing", "group", "draw")

shapes = st.fixed_dictionaries(
    {
        "percentage": st.sampled_from([0, 0.5, 20, 50, 100]),
        "of_time": st.sampled_from([0, 30, 100]),
        "users": st.sets(st.sampled_from(KEYS), max_size=3),
        "excluded": st.sets(st.sampled_from(KEYS), max_size=3),
        "groups": st.sets(st.sampled_from(["all", "pro", "vip", "undefined"]), max_size=3),
    }
)


def write(flags: Rollout, shape: dict[str, Any], typed: bool) -> None:
    flags.set("chat", False)  # from scratch
    flags.activate_percentage("chat", shape["percentage"])
    flags.activate_percentage_of_time("chat", shape["of_time"])
    flags.set_users("chat", shape["users"])
    flags.exclude_users("chat", shape["excluded"])
    for group in shape["groups"]:
        flags.activate_group("chat", group)
    values = {"value": "new", "off_value": "old", "variant": "v2"} if typed else {}
    flags.set_feature_data("chat", {**DATA, **values})


def expected(
    flags: Rollout, key: str, context: EvaluationContext
) -> tuple[bool, Reason, dict[str, object]]:
    """The answer, reason and metadata ``flags.explain`` gives for the context's user."""
    feature = flags.get("chat")
    metadata: dict[str, object] = {"owner": "web"}
    on_for_all = (feature.percentage >= 100 or feature.percentage_of_time >= 100) and not (
        feature.excluded_users
    )
    if on_for_all:
        return True, Reason.STATIC, metadata
    if not (feature.percentage or feature.percentage_of_time or feature.users or feature.groups):
        return False, Reason.DISABLED, metadata
    user: object = ContextUser(context) if feature.groups - {"all"} else key
    explanation = flags.explain("chat", user)
    metadata["rule"] = explanation.reason
    metadata["percentage"] = float(explanation.percentage)
    metadata["percentage_of_time"] = float(explanation.percentage_of_time)
    for name in NUMBERS:
        if getattr(explanation, name) is not None:
            metadata[name] = getattr(explanation, name)
    return explanation.active, REASONS[explanation.reason], metadata


@settings(max_examples=100, deadline=None)
@given(
    shape_list=st.lists(shapes, min_size=1, max_size=3),
    randomize=st.sampled_from([False, True, "ruby"]),
    seed=st.integers(0, 2**16),
    typed=st.booleans(),
)
def test_every_resolution_is_the_explanation_field_for_field(
    shape_list: list[dict[str, Any]], randomize: Any, seed: int, typed: bool
) -> None:
    with Rollout(randomize_percentage=randomize) as flags:
        flags.define_group("pro", lambda user: user.attributes.get("pro", False))
        flags.define_rule("vip", {"in": [{"var": "targetingKey"}, ["u1", "u3"]]})
        provider = RolloutProvider(flags, status_interval=None)
        provider.initialize(EvaluationContext())  # views cached: changes must drop them
        for shape in shape_list:
            write(flags, shape, typed)
            for index, key in enumerate(KEYS):
                context = EvaluationContext(key, {"pro": key in PRO})
                random.seed(seed + index)
                if typed:
                    details: FlagResolutionDetails[Any] = provider.resolve_string_details(
                        "chat", "default", context
                    )
                else:
                    details = provider.resolve_boolean_details("chat", False, context)
                random.seed(seed + index)
                active, reason, metadata = expected(flags, key, context)
                assert details.error_code is None, details
                assert (details.reason, dict(details.flag_metadata)) == (reason, metadata)
                if typed:
                    assert (details.value, details.variant) == (
                        ("new", "v2") if active else ("old", "off")
                    )
                else:
                    assert (details.value, details.variant) == (active, "on" if active else "off")
        provider.shutdown()


def test_a_flag_the_same_for_every_context_shares_one_read_only_resolution() -> None:
    with Rollout() as flags:
        flags.activate("on")
        flags.set_feature_data("on", {"owner": "web"})
        provider = RolloutProvider(flags, status_interval=None)
        provider.initialize(EvaluationContext())
        first = provider.resolve_boolean_details("on", False)
        second = provider.resolve_boolean_details("on", False, EvaluationContext("42"))
        assert second is first
        assert first == FlagResolutionDetails(
            True, None, None, Reason.STATIC, "on", {"owner": "web"}
        )
        assert FlagResolutionDetails(True, None, None, Reason.STATIC, "on", {"owner": "web"}) == (
            first
        )
        with pytest.raises(AttributeError, match="read-only"):
            first.value = False
        assert provider.resolve_boolean_details("on", False).value is True
        flags.deactivate("on")  # the flag changes: its shared resolution is dropped
        off = provider.resolve_boolean_details("on", False)
        assert (off.value, off.reason, off.variant) == (False, Reason.DISABLED, "off")
        provider.shutdown()


def test_a_flag_the_same_for_every_context_shares_its_resolution_after_a_group_is_defined() -> None:
    with Rollout() as flags:
        flags.activate("on")
        provider = RolloutProvider(flags, status_interval=None)
        provider.initialize(EvaluationContext())
        assert provider.resolve_boolean_details("on", False).reason == Reason.STATIC
        flags.define_group("pro", lambda user: True)  # every flag's check is compiled again
        answers = [provider.resolve_boolean_details("on", False) for _ in range(3)]
        assert [(a.value, a.reason, a.variant) for a in answers] == [(True, "STATIC", "on")] * 3
        assert answers[2] is answers[1]  # shared again, the flag's view read with the new check
        flags.deactivate("on")
        off = provider.resolve_boolean_details("on", False)
        assert (off.value, off.reason, off.variant) == (False, Reason.DISABLED, "off")
        provider.shutdown()


def test_a_shared_resolution_still_refuses_an_invalid_targeting_key() -> None:
    with Rollout() as flags:
        flags.activate("on")
        provider = RolloutProvider(flags, status_interval=None)
        provider.initialize(EvaluationContext())
        details = provider.resolve_boolean_details("on", False, EvaluationContext(3.5))  # type: ignore[arg-type]
        assert (details.value, details.reason) == (False, Reason.ERROR)
        assert details.error_code is not None
        assert details.error_code.value == "INVALID_CONTEXT"
        provider.shutdown()
