"""schemathesis against the app's own ``/api/v1/openapi.json``: every operation, generated
input, every response checked against the document.

Driven with hypothesis directly (``operation.as_strategy()``) rather than through
schemathesis's pytest plugin, whose fixture-based loader does not run under pytest 9.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._api_targeting import RULE_BODY_OPERATIONS
from rollout.admin._openapi import openapi_document

from .api_helpers import BEARER, TOKEN, hold_from_the_future, with_a_definition

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.missing_required_header,
    schemathesis.checks.unsupported_method,
    schemathesis.checks.allow_header_conformance,
    schemathesis.checks.ignored_auth,
]
PROBES = {"healthz", "livez", "readyz"}
OPERATION_IDS = sorted(
    operation["operationId"]
    for item in openapi_document("/api/v1", secured=True)["paths"].values()
    for key, operation in item.items()
    if key != "servers"  # the probes' own server URL (outside /api/v1)
)


# A probe takes no input and no token: there is nothing to get wrong, so no negative cases.
CASES = [
    (operation_id, mode)
    for operation_id in OPERATION_IDS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode == GenerationMode.NEGATIVE and operation_id in PROBES)
]


@pytest.mark.parametrize(("operation_id", "mode"), CASES)
def test_the_api_answers_as_its_document_says(operation_id: str, mode: GenerationMode) -> None:
    with Rollout() as flags:
        hold_from_the_future(with_a_definition(flags))
        app = create_app(flags, token=TOKEN)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=BEARER)
        operation = schema.find_operation_by_id(operation_id)

        # Negative cases keep valid path parameters: a name holding "/" reaches another
        # route (DELETE /flags/{name} with name "x/data" is DELETE /flags/x/data), which no
        # document of nested routes can describe. Bad names are tested in test_api_bad_input.
        fixed = (
            {"name": "chat", "group": "admins", "rule": "pro"}
            if mode == GenerationMode.NEGATIVE
            else None
        )
        # A rule's meaning (operators, arity, references, bounds) is beyond JSON Schema: the
        # document describes its shape, and a generated object is rarely a valid rule. Those
        # bodies are refused with a 422 naming the JSON path (test_api_targeting); every other
        # check still holds for them.
        checks = [
            check
            for check in CHECKS
            if operation_id not in RULE_BODY_OPERATIONS
            or check is not schemathesis.checks.positive_data_acceptance
        ]
        strategy = operation.as_strategy(mode, path_parameters=fixed)

        @given(case=strategy)
        @settings(max_examples=30, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Case[Any]) -> None:
            case.call_and_validate(headers=BEARER, checks=checks)

        check()
