"""schemathesis against OFREP's own OpenAPI document (a copy: ``ofrep/openapi.yaml``): generated
requests to both endpoints, every answer checked against the document's responses.

The copy is the document unchanged; three readings are applied here, in :func:`document`, each
because the document as written cannot be met by any server, or contradicts its own history:

* ``evaluationSuccess`` is ``oneOf`` six value shapes, one of which (``codeDefaultFlag``, no
  ``value``) is an object with no required property and so matches every answer, and an integer
  value matches both ``integerFlag`` and ``floatFlag``: no answer with a value is exactly one of
  them. Read as ``anyOf``.
* its ``reason`` enum lacks ``DEFAULT``, an OpenFeature reason: the protocol allowed any reason
  (open-feature/protocol#20, "Allow any reason"), and the enum came back in a documentation
  change (#56). ``DEFAULT`` is added: Rollout answers it as its OpenFeature provider does.
* the request ``context`` is required, and in it ``targetingKey``; Rollout accepts a body
  without them (a reference provider sends ``{}`` when the application set no context) and
  answers TARGETING_KEY_MISSING for the flags that need a key. So negative cases are checked
  for everything but "refuses what the document would not send".
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode

from rollout import Rollout
from rollout.admin import create_app

from .api_helpers import BEARER, TOKEN

SOURCE = Path(__file__).parent / "ofrep" / "openapi.yaml"
ALWAYS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
POSITIVE = [*ALWAYS, schemathesis.checks.positive_data_acceptance]
KEYS = ["everyone", "nobody", "vip", "half", "color", "limit", "layout", "pro-only", "missing"]
#: Flags with a definition: targeted, disabled, without a default variant, and one whose rule
#: names a missing named rule (PARSE_ERROR, a 400 for any context).
DEFINED = ["plan-color", "quiet", "tier", "broken"]


@cache
def _original() -> dict[str, Any]:
    loaded: dict[str, Any] = schemathesis.openapi.from_path(SOURCE).raw_schema  # YAML read
    return loaded


def document() -> dict[str, Any]:
    """The copy, with the three readings the module docstring gives."""
    doc = copy.deepcopy(_original())
    success = doc["components"]["schemas"]["evaluationSuccess"]
    success["anyOf"] = success["allOf"][1].pop("oneOf")
    del success["allOf"][1]
    success["allOf"][0]["properties"]["reason"]["enum"].append("DEFAULT")
    return doc


def test_the_readings_apply_to_the_document_as_published() -> None:
    # If upstream fixes a place, its reading here must go (and this test says so).
    schemas = _original()["components"]["schemas"]
    assert "oneOf" in schemas["evaluationSuccess"]["allOf"][1]
    assert schemas["codeDefaultFlag"].get("required") is None
    assert "DEFAULT" not in schemas["evaluationSuccess"]["allOf"][0]["properties"]["reason"]["enum"]


def seeded(flags: Rollout) -> Rollout:
    flags.activate("everyone")
    flags.set("nobody", False)
    flags.activate_users("vip", ["alice"])
    flags.set_feature_data("vip", {"team": "growth", "cost": 3})
    flags.activate_percentage("half", 50)
    flags.activate_users("color", ["alice"])
    flags.set_feature_data("color", {"value": "blue", "off_value": "grey"})
    flags.activate_users("limit", ["alice"])
    flags.set_feature_data("limit", {"value": 10})
    flags.activate_users("layout", ["alice"])
    flags.set_feature_data("layout", {"value": {"columns": 2}, "off_value": {}})
    flags.define_group("pro", lambda user: getattr(user, "plan", None) == "pro")
    flags.activate_group("pro-only", "pro")
    flags.define_rule("paying", {"in": [{"var": "plan"}, ["pro", "enterprise"]]})
    flags.define_flag(
        "plan-color",
        {"red": "#f00", "blue": "#00f"},
        default_variant="red",
        targeting={"if": [{"$ref": "paying"}, "blue"]},
        metadata={"owner": "web", "ticket": 7},
    )
    flags.define_flag("quiet", {"on": True, "off": False}, default_variant="on", enabled=False)
    alice = {"if": [{"==": [{"var": "targetingKey"}, "alice"]}, "gold", None]}
    flags.define_flag("tier", {"gold": 1.5, "none": 0.0}, default_variant=None, targeting=alice)
    missing = {"if": [{"$ref": "missing"}, "b"]}
    variants = {"a": {"n": 1}, "b": {"n": 2}}
    flags.define_flag("broken", variants, default_variant="a", targeting=missing)
    return flags


TARGETS = [("evaluateFlag", key) for key in KEYS + DEFINED] + [
    ("evaluateFlag", None),
    ("evaluateFlagsBulk", None),
]


@pytest.mark.parametrize(("operation_id", "key"), TARGETS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_ofrep_answers_as_its_document_says(
    operation_id: str, key: str | None, mode: GenerationMode
) -> None:
    with seeded(Rollout()) as flags:
        app = create_app(flags, token=TOKEN)
        schema = schemathesis.openapi.from_dict(document())
        schema.app = app
        operation = schema.find_operation_by_id(operation_id)
        fixed = {"key": key} if key is not None else None
        strategy = operation.as_strategy(mode, path_parameters=fixed)
        # A schema-valid context may hold an empty targetingKey: `half` (a percentage of users)
        # then answers 400 TARGETING_KEY_MISSING, as the document's own 400 example does;
        # `broken` answers 400 PARSE_ERROR whatever the context.
        positive = ALWAYS if key in {"half", "broken"} else POSITIVE
        checks = positive if mode == GenerationMode.POSITIVE else ALWAYS

        @given(case=strategy)
        @settings(max_examples=25, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Case[Any]) -> None:
            case.call_and_validate(headers=BEARER, checks=checks)

        check()
