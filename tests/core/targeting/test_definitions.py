"""parse_flagd / to_flagd: flagd documents read, validated with JSON paths, and written back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollout._core.targeting import (
    FlagdDocument,
    FlagDefinition,
    RuleError,
    compile_flag,
    parse_flagd,
    to_flagd,
)
from rollout._core.targeting.definition import check_definition

from .flagd_facts import DOCUMENT, DOCUMENT_TEXT


def boolean(**fields: Any) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
        **fields,
    }


def test_a_document_is_read_into_definitions() -> None:
    document = parse_flagd(
        {
            "$schema": "https://flagd.dev/schema/v0/flags.json",
            "flags": {
                "checkout": boolean(
                    targeting={"if": [{"$ref": "staff"}, "on", "off"]}, metadata={"team": "pay"}
                ),
                "banner": {"state": "DISABLED", "variants": {"red": "#f00", "blue": "#00f"}},
            },
            "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
            "metadata": {"flagSetId": "shop", "version": "3"},
        }
    )
    checkout = document.flags["checkout"]
    assert checkout == FlagDefinition(
        variants={"on": True, "off": False},
        default_variant="on",
        targeting={"if": [{"$ref": "staff"}, "on", "off"]},
        enabled=True,
        metadata={"team": "pay"},
    )
    banner = document.flags["banner"]
    assert (banner.enabled, banner.default_variant, banner.targeting) == (False, None, None)
    assert document.evaluators == {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}}
    assert document.flag_metadata("checkout") == {
        "flagSetId": "shop",
        "version": "3",
        "team": "pay",
    }
    resolution = compile_flag(checkout, document.evaluators).resolve(
        "checkout", {"email": "a@example.com"}
    )
    assert (resolution.value, resolution.reason) == (True, "TARGETING_MATCH")


def test_text_and_bytes_are_read_like_the_mapping() -> None:
    assert parse_flagd(DOCUMENT_TEXT) == parse_flagd(DOCUMENT)
    assert parse_flagd(DOCUMENT_TEXT.encode()) == parse_flagd(DOCUMENT)


def test_empty_targeting_and_empty_default_are_none_as_in_flagd() -> None:
    flag = parse_flagd({"flags": {"f": boolean(targeting={}, defaultVariant="")}}).flags["f"]
    assert (flag.targeting, flag.default_variant) == (None, None)
    assert compile_flag(flag, {}).resolve("f", {}).reason == "DEFAULT"


def test_an_array_of_flags_is_read_as_flagd_does() -> None:
    document = parse_flagd(
        {"flags": [{"key": "a", **boolean()}, {"key": "b", **boolean(state="DISABLED")}]}
    )
    assert list(document.flags) == ["a", "b"]
    with pytest.raises(RuleError) as raised:
        parse_flagd({"flags": [{"key": "a", **boolean()}, {"key": "a", **boolean()}]})
    assert raised.value.path == "$.flags[1].key"


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ("{not json", "$"),
        ('{"flags": {"f": {"state": "ENABLED", "variants": {"a": NaN}}}}', "$"),
        ([], "$"),
        ({}, "$"),
        ({"flags": {"f": {"variants": {"a": 1}}}}, "$.flags.f"),
        ({"flags": {"my flag": {"state": "ON", "variants": {"a": 1}}}}, '$.flags["my flag"].state'),
        ({"flags": {"f": {"state": "ENABLED", "variants": {}}}}, "$.flags.f.variants"),
        (
            {"flags": {"f": {"state": "ENABLED", "variants": {"a": 1, "b": "1"}}}},
            "$.flags.f.variants",
        ),
        ({"flags": {"f": {"state": "ENABLED", "variants": {"a": [1]}}}}, "$.flags.f.variants.a"),
        (
            {"flags": {"f": {"state": "ENABLED", "variants": {"a": {"x": float("inf")}}}}},
            "$.flags.f.variants.a",
        ),
        ({"flags": {"f": boolean(defaultVariant="maybe")}}, "$.flags.f.defaultVariant"),
        ({"flags": {"f": boolean(targeting=[1])}}, "$.flags.f.targeting"),
        (
            {"flags": {"f": boolean(targeting={"if": [{"nope": 1}, "on"]})}},
            "$.flags.f.targeting.if[0].nope",
        ),
        ({"flags": {"f": boolean(metadata={"owner": None})}}, "$.flags.f.metadata.owner"),
        ({"flags": {"f": boolean()}, "metadata": {"x": [1]}}, "$.metadata.x"),
        ({"flags": {"f": boolean()}, "$evaluators": {"e": {}}}, "$.$evaluators.e"),
        (
            {"flags": {"f": boolean()}, "$evaluators": {"e": {"if": [{"x": 1}]}}},
            "$.$evaluators.e.if[0].x",
        ),
        ({"flags": {"f": boolean()}, "$evaluators": []}, "$.$evaluators"),
    ],
)
def test_a_bad_document_is_refused_naming_the_path(document: Any, path: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_flagd(document)
    assert raised.value.path == path
    assert str(raised.value).startswith(path)


def test_parsing_does_not_change_or_keep_the_callers_document() -> None:
    document = {"flags": {"f": boolean(targeting={"if": [True, "on"]})}}
    before = copy.deepcopy(document)
    parsed = parse_flagd(document)
    assert document == before
    document["flags"]["f"]["variants"]["on"] = "changed"
    document["flags"]["f"]["targeting"]["if"][1] = "off"
    assert parsed.flags["f"].variants["on"] is True
    assert parsed.flags["f"].targeting == {"if": [True, "on"]}


def test_to_flagd_round_trips() -> None:
    document = parse_flagd(DOCUMENT_TEXT)
    written = to_flagd(document.flags, document.evaluators, {"flagSetId": "kit"})
    json.dumps(written)  # plain JSON
    again = parse_flagd(written)
    assert again.flags == document.flags
    assert again.evaluators == document.evaluators
    assert again.metadata == {"flagSetId": "kit"}
    assert written["flags"]["null-default-flag"]["defaultVariant"] is None
    assert written["flags"]["disabled-boolean-flag"]["state"] == "DISABLED"
    assert "targeting" not in written["flags"]["boolean-flag"]
    assert parse_flagd(to_flagd({}, {})) == FlagdDocument(flags={}, evaluators={}, metadata={})


def test_to_flagd_names_flagds_schema_as_flagd_files_do() -> None:
    # So an editor validates and completes an exported file, as it does flagd's own examples.
    written = to_flagd(parse_flagd(DOCUMENT_TEXT).flags, {})
    assert written["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    assert next(iter(written)) == "$schema"


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        (FlagDefinition(variants={"a": (1,)}, default_variant=None), "$.variants.a"),
        (FlagDefinition(variants={"": 1}, default_variant=None), '$.variants[""]'),
        (FlagDefinition(variants={"a": 1}, default_variant="b"), "$.defaultVariant"),
        (
            FlagDefinition(variants={"a": 1}, default_variant=None, targeting={"x": 1}),
            "$.targeting.x",
        ),
        (
            FlagDefinition(
                variants={"a": 1},
                default_variant=None,
                metadata={"k": [1]},  # type: ignore[dict-item]
            ),
            "$.metadata.k",
        ),
    ],
)
def test_check_definition(definition: FlagDefinition, path: str) -> None:
    with pytest.raises(RuleError) as raised:
        check_definition(definition)
    assert raised.value.path == path


def test_a_flag_whose_rule_cannot_compile_resolves_as_a_parse_error() -> None:
    definition = FlagDefinition(variants={"a": 1}, default_variant="a", targeting={"$ref": "gone"})
    resolution = compile_flag(definition, {"other": {"==": [1, 1]}}).resolve("f", {})
    assert (resolution.value, resolution.reason, resolution.error_code) == (
        None,
        "ERROR",
        "PARSE_ERROR",
    )
    loop = {"l": {"!": {"$ref": "l"}}}
    cyclic = FlagDefinition(variants={"a": 1}, default_variant="a", targeting={"$ref": "l"})
    assert compile_flag(cyclic, loop).resolve("f", {}).error_code == "PARSE_ERROR"


@pytest.mark.parametrize(
    "targeting",
    [{"if": [{1: 2}, "a"]}, {"var": object()}, {"$ref": ["x"]}, {"in": ["a", {"b": {1, 2}}]}],
)
def test_compile_flag_never_raises_for_an_unchecked_definition(targeting: Any) -> None:
    definition = FlagDefinition(variants={"a": 1}, default_variant="a", targeting=targeting)
    resolution = compile_flag(definition, {}).resolve("f", {})
    assert (resolution.value, resolution.reason, resolution.error_code) == (
        None,
        "ERROR",
        "PARSE_ERROR",
    )
