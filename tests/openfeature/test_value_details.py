"""``RolloutProvider.resolve_value_details``: a flag's value whatever its type, for a remote
client that names none (OFREP), agreeing with the typed resolutions."""

from __future__ import annotations

from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from rollout import Rollout
from rollout.openfeature import RolloutProvider

ALICE, BOB = EvaluationContext("alice"), EvaluationContext("bob")


@pytest.mark.parametrize(
    ("data", "context", "value", "variant"),
    [
        ({}, ALICE, True, "on"),
        ({}, BOB, False, "off"),
        ({"value": "blue", "off_value": "grey"}, ALICE, "blue", "on"),
        ({"value": "blue", "off_value": "grey"}, BOB, "grey", "off"),
        ({"value": 3, "off_value": 0.5}, BOB, 0.5, "off"),  # int and float: both numbers
        ({"value": {"a": [1]}}, ALICE, {"a": [1]}, "on"),
        ({"value": 10}, BOB, None, None),  # off, no off_value: the caller's default
    ],
)
def test_the_value_of_any_type(
    data: dict[str, Any], context: EvaluationContext, value: object, variant: str | None
) -> None:
    with Rollout() as flags:
        flags.activate_user("f", "alice")
        flags.set_feature_data("f", data)
        details = RolloutProvider(flags).resolve_value_details("f", context)
    assert (details.value, details.variant, details.error_code) == (value, variant, None)
    assert details.reason == (Reason.TARGETING_MATCH if context is ALICE else Reason.DEFAULT)


@pytest.mark.parametrize(
    "data", [{"value": "blue", "off_value": 3}, {"value": None}, {"value": True, "off_value": 1}]
)
def test_values_no_client_type_could_take_are_a_parse_error(data: dict[str, Any]) -> None:
    with Rollout() as flags:
        flags.activate_user("f", "alice")
        flags.set_feature_data("f", data)
        details = RolloutProvider(flags).resolve_value_details("f", ALICE)
    assert (details.value, details.error_code, details.reason) == (
        None,
        ErrorCode.PARSE_ERROR,
        Reason.ERROR,
    )
    assert "must be one type" in (details.error_message or "")


def test_an_object_answered_is_a_copy() -> None:
    with Rollout() as flags:
        flags.activate("f")
        flags.set_feature_data("f", {"value": {"a": [1]}})
        provider = RolloutProvider(flags)
        provider.initialize(EvaluationContext())
        first = provider.resolve_value_details("f", ALICE).value
        assert isinstance(first, dict)
        first["a"].append(2)
        assert provider.resolve_value_details("f", ALICE).value == {"a": [1]}
        provider.shutdown()
