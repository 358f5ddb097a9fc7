"""parse_flagd accepts and refuses what flagd's own JSON schema does (checked with jsonschema_rs).

The schema files are vendored under flagd_schema/ (see SOURCE.md). Where the engine departs from
the schema on purpose, the departure is a test of its own below, saying which side and why
(docs/targeting.md lists them too).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from rollout._core.targeting import RuleError, parse_flagd

from .flagd_facts import DOCUMENT

SCHEMAS = Path(__file__).parent / "flagd_schema"
BASE = "https://flagd.dev/schema/v0/"


def _validator() -> Any:
    schemas = {
        f"{BASE}{n}.json": json.loads((SCHEMAS / f"{n}.json").read_text())
        for n in ("flagd", "flags", "targeting")
    }
    registry = jsonschema_rs.Registry(list(schemas.items()))
    return jsonschema_rs.validator_for(
        schemas[f"{BASE}flagd.json"], registry=registry, base_uri=f"{BASE}flagd.json"
    )


SCHEMA = _validator()


def ours_accept(document: dict[str, Any]) -> bool:
    try:
        parse_flagd(copy.deepcopy(document))
    except RuleError:
        return False
    return True


def one(flag: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"flags": {"f": flag}, **top}


def boolean(**fields: Any) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
        **fields,
    }


def targeted(rule: Any) -> dict[str, Any]:
    return one(boolean(targeting=rule))


VALID = {
    "minimal": one(boolean()),
    "disabled": one(boolean(state="DISABLED")),
    "null default": one(boolean(defaultVariant=None)),
    "no default": one({"state": "ENABLED", "variants": {"a": 1, "b": 2.5}}),
    "strings": one({"state": "ENABLED", "variants": {"a": "x", "b": ""}, "defaultVariant": "b"}),
    "objects": one(
        {
            "state": "ENABLED",
            "variants": {"a": {}, "b": {"k": [1, {"x": None}]}},
            "defaultVariant": "a",
        }
    ),
    "metadata": one(
        boolean(metadata={"team": "web", "n": 2, "ok": True}),
        metadata={"flagSetId": "s", "version": "1"},
    ),
    "empty targeting": targeted({}),
    "if var": targeted({"if": [{"==": [{"var": "email"}, "a@b.c"]}, "on", "off"]}),
    "var default": targeted({"if": [{"var": ["plan", "free"]}, "on", None]}),
    "flagd properties": targeted({"if": [{"==": [{"var": "$flagd.flagKey"}, "f"]}, "on", "off"]}),
    "in list": targeted({"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "on", "off"]}),
    "between": targeted({"if": [{"<": [1, {"var": "age"}, 65]}, "on", "off"]}),
    "arithmetic": targeted({"if": [{">": [{"+": [{"var": "a"}, 1]}, {"*": [2, 3]}]}, "on", "off"]}),
    "logic": targeted({"if": [{"and": [{"!": {"var": "x"}}, {"or": [True, False]}]}, "on", "off"]}),
    "missing": targeted({"if": [{"missing": ["a", "b"]}, "off", "on"]}),
    "missing_some": targeted({"if": [{"missing_some": [1, ["a", "b"]]}, "off", "on"]}),
    "iteration": targeted(
        {"if": [{"some": [{"var": "tags"}, {"==": [{"var": ""}, "beta"]}]}, "on", "off"]}
    ),
    "reduce": targeted(
        {
            "if": [
                {"reduce": [{"var": "n"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
                "on",
                "off",
            ]
        }
    ),
    "strings ops": targeted(
        {"if": [{"in": ["@x.com", {"cat": [{"var": "email"}, ""]}]}, "on", "off"]}
    ),
    "sem_ver": targeted({"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.3"]}, "on", "off"]}),
    "starts_with": targeted({"if": [{"starts_with": [{"var": "email"}, "admin@"]}, "on", "off"]}),
    "fractional": targeted({"fractional": [{"var": "email"}, ["on", 50], ["off", 50]]}),
    "fractional shorthand": targeted({"fractional": [["on"], ["off", 3]]}),
    "ref": {
        **targeted({"if": [{"$ref": "rule"}, "on", "off"]}),
        "$evaluators": {"rule": {"==": [1, 1]}},
    },
    "array of flags": {"flags": [{"key": "f", **boolean()}]},
}
INVALID = {
    "no flags": {},
    "flags not an object": {"flags": 3},
    "no state": one({"variants": {"on": True}}),
    "bad state": one(boolean(state="ON")),
    "no variants": one({"state": "ENABLED"}),
    "empty variants": one({"state": "ENABLED", "variants": {}}),
    "mixed variant types": one({"state": "ENABLED", "variants": {"a": True, "b": 1}}),
    "array variant": one({"state": "ENABLED", "variants": {"a": [1]}}),
    "null variant": one({"state": "ENABLED", "variants": {"a": None}}),
    "numeric default": one(boolean(defaultVariant=1)),
    "metadata object": one(boolean(metadata={"a": {"b": 1}})),
    "targeting not an object": targeted("on"),
    "targeting of two operators": targeted({"var": "a", "if": [True, "on", "off"]}),
    "unknown operator": targeted({"if": [{"nope": [1]}, "on", "off"]}),
    "equality of one": targeted({"==": [1]}),
    "greater of three": targeted({">": [1, 2, 3]}),
    "if of none": targeted({"if": []}),
    "reduce without initial": targeted({"reduce": [[1], {"var": "current"}]}),
    "map of one": targeted({"map": [[1]]}),
    "unknown flagd property": targeted({"var": "$flagd.other"}),
    "ref not a string": targeted({"if": [{"$ref": 1}, "on", "off"]}),
    "evaluator unknown op": {**one(boolean()), "$evaluators": {"rule": {"nope": 1}}},
    "array flag without key": {"flags": [boolean()]},
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_documents_both_accept(name: str) -> None:
    assert SCHEMA.is_valid(VALID[name])
    assert ours_accept(VALID[name])


@pytest.mark.parametrize("name", sorted(INVALID))
def test_documents_both_refuse(name: str) -> None:
    assert not SCHEMA.is_valid(INVALID[name])
    assert not ours_accept(INVALID[name])


# Departures, each on purpose.
def test_flagd_operator_arguments_are_checked_when_they_run_as_flagd_does() -> None:
    # The schema refuses a sem_ver with two arguments; flagd's loader only warns, evaluates it
    # to null, and its testkit checks that fallback (semver-wrong-args-flag). We follow flagd.
    for rule in (
        {"sem_ver": [{"var": "v"}, "="]},
        {"sem_ver": [{"var": "v"}, "===", "1.0.0"]},
        {"starts_with": ["abc"]},
        {"fractional": [{"var": "k"}, ["on", 1.5]]},
    ):
        assert not SCHEMA.is_valid(targeted(rule))
        assert ours_accept(targeted(rule))
    assert not SCHEMA.is_valid(DOCUMENT)  # the testkit's flags break the schema the same way
    assert ours_accept(DOCUMENT)


def test_flagd_loader_rules_beyond_the_schema_are_kept() -> None:
    # flagd refuses a default variant that is not a variant, and an empty evaluator, when it
    # loads a document, though the schema allows both.
    unknown_default = one(boolean(defaultVariant="maybe"))
    empty_evaluator = {**one(boolean()), "$evaluators": {"rule": {}}}
    for document in (unknown_default, empty_evaluator):
        assert SCHEMA.is_valid(document)
        assert not ours_accept(document)


def test_jsonlogic_forms_the_schema_omits_are_accepted() -> None:
    # "?:" is JsonLogic's alias of "if", and a literal object is a JsonLogic value; the
    # schema lists neither, json-logic-js (and flagd's evaluator) run both.
    for rule in (
        {"?:": [True, "on", "off"]},
        {"if": [{"==": [{"var": "o"}, {"a": 1, "b": 2}]}, "on", "off"]},
    ):
        assert not SCHEMA.is_valid(targeted(rule))
        assert ours_accept(targeted(rule))
