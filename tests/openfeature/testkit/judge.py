"""How a testkit row is asked through an OpenFeature client and what its answer must be."""

from __future__ import annotations

from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails

from .scenarios import Row

__all__ = ["assert_row", "evaluate"]


def evaluate(client: OpenFeatureClient, row: Row) -> FlagEvaluationDetails[Any]:
    """The scenario's ``When the flag was evaluated with details``, with its context."""
    context = EvaluationContext(row.targeting_key, dict(row.attributes))
    # client.get_boolean_details, get_string_details... (FlagType.BOOLEAN is "BOOLEAN")
    ask = getattr(client, f"get_{row.kind.value.lower()}_details")
    details: FlagEvaluationDetails[Any] = ask(row.key, row.default, context)
    return details


def assert_row(details: FlagEvaluationDetails[Any], row: Row) -> None:
    """The scenario's ``Then`` steps. The error code is always compared: a row that expects
    none gets none (flagd's evaluator answers those rows without one)."""
    observed = (details.value, details.error_code, details.error_message)
    assert observed[:2] == (row.value, row.error), observed
    # The value's type too: 0 is not 0.0 nor False, and a float flag answers a float.
    assert type(details.value) is type(row.value), (details.value, row.value)
    if row.reason is not None:
        assert details.reason == row.reason, details
    if row.metadata == {}:  # "the resolved metadata is empty"
        assert dict(details.flag_metadata) == {}, details.flag_metadata
    for key, value in (row.metadata or {}).items():  # "should contain", each of its type
        assert key in details.flag_metadata, (key, details.flag_metadata)
        found = details.flag_metadata[key]
        assert (found, type(found)) == (value, type(value)), (key, details.flag_metadata)
