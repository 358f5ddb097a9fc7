"""flagd's evaluator testkit (flagd-testbed, evaluator/gherkin), every scenario the engine answers.

Each scenario loads the flags with ``parse_flagd`` (tests/core/targeting/flagd_facts.py: the
testkit's facts, our own document) and resolves with ``compile_flag(...).resolve(...)``. The
"resolved value" of a scenario is the variant's value, or the caller's fallback when the engine
answers no value (DISABLED, DEFAULT without a default variant, ERROR), as a provider does.
Fractional scenarios use the v2 examples (current flagd's bucketing). The two errors.feature
scenarios are the caller's (FLAG_NOT_FOUND, TYPE_MISMATCH): the engine's part of them is below.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout._core.targeting import FlagdDocument, Resolution, compile_flag, parse_flagd

from .flagd_facts import DOCUMENT_TEXT, PICS

DOCUMENT: FlagdDocument = parse_flagd(DOCUMENT_TEXT)


def resolve(key: str, context: dict[str, Any] | None = None) -> Resolution:
    compiled = compile_flag(DOCUMENT.flags[key], DOCUMENT.evaluators)
    return compiled.resolve(key, context or {})


def value(key: str, fallback: Any, context: dict[str, Any] | None = None) -> Any:
    resolution = resolve(key, context)
    return fallback if resolution.value is None else resolution.value


# evaluation.feature
@pytest.mark.parametrize(
    ("key", "fallback", "expected"),
    [
        ("boolean-flag", False, True),
        ("string-flag", "bye", "hi"),
        ("integer-flag", 1, 10),
        ("float-flag", 0.1, 0.5),
        ("object-flag", {}, PICS),
    ],
)
def test_evaluation_resolves_basic_values(key: str, fallback: Any, expected: Any) -> None:
    assert value(key, fallback) == expected
    assert resolve(key).reason == "STATIC"


# targeting.feature
@pytest.mark.parametrize(
    ("targeting_key", "expected", "reason"),
    [
        ("5c3d8535-f81a-4478-a6d3-afaa4d51199e", "hit", "TARGETING_MATCH"),
        ("f20bd32d-703b-48b6-bc8e-79d53c85134a", "miss", "DEFAULT"),
    ],
)
def test_targeting_by_targeting_key(targeting_key: str, expected: str, reason: str) -> None:
    resolution = resolve("targeting-key-flag", {"targetingKey": targeting_key})
    assert (resolution.value, resolution.reason) == (expected, reason)


# zero-values.feature
ZERO_VALUES = [("boolean", False), ("string", ""), ("integer", 0), ("float", 0.0)]


@pytest.mark.parametrize(("kind", "zero"), [*ZERO_VALUES, ("object", {})])
def test_zero_values_resolve_statically(kind: str, zero: Any) -> None:
    resolution = resolve(f"{kind}-zero-flag")
    assert (resolution.value, resolution.reason) == (zero, "STATIC")
    assert type(resolution.value) is type(zero)


@pytest.mark.parametrize(("kind", "zero"), ZERO_VALUES)
@pytest.mark.parametrize(
    ("email", "reason"),
    [("ballmer@macrosoft.com", "TARGETING_MATCH"), ("ballmer@none.com", "DEFAULT")],
)
def test_zero_values_through_targeting(kind: str, zero: Any, email: str, reason: str) -> None:
    resolution = resolve(f"{kind}-targeted-zero-flag", {"email": email})
    assert (resolution.value, resolution.reason, resolution.variant) == (zero, reason, "zero")
    assert type(resolution.value) is type(zero)


# disabled.feature
@pytest.mark.parametrize(
    ("key", "fallback"),
    [
        ("disabled-boolean-flag", False),
        ("disabled-string-flag", "bye"),
        ("disabled-integer-flag", 1),
        ("disabled-float-flag", 0.1),
        ("disabled-object-flag", {}),
    ],
)
def test_disabled_flags_answer_the_callers_default(key: str, fallback: Any) -> None:
    resolution = resolve(key)
    assert resolution == Resolution(None, None, "DISABLED", None, None)
    assert value(key, fallback) == fallback


# metadata.feature: the definition carries the flag's metadata
def test_metadata_is_carried_by_the_definition() -> None:
    metadata = DOCUMENT.flag_metadata("metadata-flag")
    assert metadata == {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True}
    assert [type(metadata[k]) for k in ("string", "integer", "float", "boolean")] == [
        str,
        int,
        float,
        bool,
    ]


@pytest.mark.parametrize("key", ["boolean-flag", "integer-flag", "float-flag", "string-flag"])
def test_flags_without_metadata_have_none(key: str) -> None:
    assert DOCUMENT.flag_metadata(key) == {}


# errors.feature: the caller answers FLAG_NOT_FOUND and TYPE_MISMATCH from these facts
def test_errors_facts_for_the_caller() -> None:
    assert "missing-flag" not in DOCUMENT.flags
    resolution = resolve("wrong-flag")
    assert (resolution.value, resolution.reason) == ("uno", "STATIC")  # a string, not an integer


# evaluator-refs.feature
@pytest.mark.parametrize(
    ("key", "expected"),
    [("some-email-targeted-flag", "hi"), ("some-other-email-targeted-flag", "yes")],
)
def test_evaluator_reuse_via_ref(key: str, expected: str) -> None:
    assert value(key, "fallback", {"email": "ballmer@macrosoft.com"}) == expected


@pytest.mark.parametrize("style", ["compact", "space-after-colon", "space-around-colon"])
@pytest.mark.parametrize(
    ("email", "expected"), [("ballmer@macrosoft.com", "hi"), ("user@example.com", "bye")]
)
def test_ref_resolves_whatever_the_whitespace(style: str, email: str, expected: str) -> None:
    key = f"ref-whitespace-{style}-flag"
    assert DOCUMENT_TEXT.count('"$ref"') > 3  # the text really holds the three spellings
    resolution = resolve(key, {"email": email})
    assert (resolution.value, resolution.reason) == (expected, "TARGETING_MATCH")


def test_ref_to_a_nonexistent_evaluator_is_a_parse_error() -> None:
    resolution = resolve("ref-to-nonexistent-evaluator-flag")
    assert (resolution.value, resolution.reason, resolution.error_code) == (
        None,
        "ERROR",
        "PARSE_ERROR",
    )
    assert "nonexistent_evaluator" in (resolution.error_message or "")
    assert value("ref-to-nonexistent-evaluator-flag", "fallback") == "fallback"


# no-default-variant.feature
@pytest.mark.parametrize(
    ("key", "email", "fallback", "expected", "reason"),
    [
        ("null-default-flag", "", True, True, "DEFAULT"),
        ("null-default-flag", "", False, False, "DEFAULT"),
        ("undefined-default-flag", "", 100, 100, "DEFAULT"),
        (
            "no-default-flag-null-targeting-variant",
            "wozniak@orange.com",
            "Inventor",
            "Inventor",
            "DEFAULT",
        ),
        (
            "no-default-flag-null-targeting-variant",
            "jobs@orange.com",
            "CEO",
            "CEO",
            "TARGETING_MATCH",
        ),
        (
            "no-default-flag-undefined-targeting-variant",
            "wozniak@orange.com",
            "Retired",
            "Retired",
            "DEFAULT",
        ),
    ],
)
def test_no_default_variant(
    key: str, email: str, fallback: Any, expected: Any, reason: str
) -> None:
    resolution = resolve(key, {"email": email})
    assert resolution.reason == reason
    assert resolution.error_code is None
    assert value(key, fallback, {"email": email}) == expected


# semver.feature
@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ],
)
def test_semver_numeric_comparison(version: str, expected: str) -> None:
    assert value("equal-greater-lesser-version-flag", "fallback", {"version": version}) == expected


@pytest.mark.parametrize(
    ("version", "expected"), [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")]
)
def test_semver_minor_and_major_ranges(version: str, expected: str) -> None:
    assert value("major-minor-version-flag", "fallback", {"version": version}) == expected


@pytest.mark.parametrize(
    ("key", "version"),
    [
        ("semver-invalid-version-flag", "not-a-version"),
        ("semver-invalid-operator-flag", "1.0.0"),
        ("semver-wrong-args-flag", "1.0.0"),
    ],
)
def test_semver_invalid_input_falls_back_to_the_default_variant(key: str, version: str) -> None:
    resolution = resolve(key, {"version": version})
    assert (resolution.value, resolution.reason) == ("fallback", "DEFAULT")


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0.0", "match"), ("v1.0.0", "match"), ("V1.0.0", "match"), ("2.0.0", "no-match")],
)
def test_semver_v_prefix(version: str, expected: str) -> None:
    assert value("semver-v-prefix-flag", "fallback", {"version": version}) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.5.0", "match"),
        ("1.0.0", "match"),
        ("1.0", "match"),
        ("1", "match"),
        (1, "match"),
        (1.0, "match"),
        (1.2, "match"),
        ("2.0.0", "no-match"),
    ],
)
def test_semver_partial_versions(version: Any, expected: str) -> None:
    assert value("semver-partial-version-flag", "fallback", {"version": version}) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [(1.2, "match"), (1.1, "no-match"), (2, "match"), (1, "no-match"), ("1.2", "match")],
)
def test_semver_numeric_context_values(version: Any, expected: str) -> None:
    assert value("semver-numeric-context-flag", "fallback", {"version": version}) == expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0.0", "match"), ("1.0.0+other", "match"), ("2.0.0", "no-match")]
)
def test_semver_ignores_build_metadata(version: str, expected: str) -> None:
    assert value("semver-build-metadata-flag", "fallback", {"version": version}) == expected


# string.feature
@pytest.mark.parametrize(
    ("identifier", "expected"),
    [("abcdef", "prefix"), ("uvwxyz", "postfix"), ("abcxyz", "prefix"), ("lmnopq", "none")],
)
def test_starts_with_and_ends_with(identifier: str, expected: str) -> None:
    assert value("starts-ends-flag", "fallback", {"id": identifier}) == expected


@pytest.mark.parametrize(
    ("key", "context"),
    [
        ("starts-with-non-string-flag", {"num": 123}),
        ("ends-with-non-string-flag", {"num": 123}),
        ("starts-with-wrong-args-flag", {}),
        ("ends-with-wrong-args-flag", {}),
    ],
)
def test_string_operators_answer_null_on_bad_input(key: str, context: dict[str, Any]) -> None:
    resolution = resolve(key, context)
    assert (resolution.value, resolution.reason) == ("fallback", "DEFAULT")


# fractional.feature (v2)
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ],
)
def test_fractional(name: str, expected: str) -> None:
    resolution = resolve("fractional-flag", {"user": {"name": name}})
    assert (resolution.value, resolution.reason) == (expected, "TARGETING_MATCH")


@pytest.mark.parametrize(
    ("targeting_key", "expected"), [("jon@company.com", "heads"), ("jane@company.com", "tails")]
)
def test_fractional_shorthand(targeting_key: str, expected: str) -> None:
    assert (
        value("fractional-flag-shorthand", "fallback", {"targetingKey": targeting_key}) == expected
    )


@pytest.mark.parametrize(
    ("name", "suit"),
    [("seven", "hearts"), ("eight", "diamonds"), ("nine", "clubs"), ("two", "spades")],
)
def test_fractional_shared_seed_buckets_two_flags_alike(name: str, suit: str) -> None:
    context = {"user": {"name": name}}
    assert value("fractional-flag-A-shared-seed", "fallback", context) == suit
    assert value("fractional-flag-B-shared-seed", "fallback", context) == f"ace-of-{suit}"


def test_fractional_single_entry() -> None:
    assert (
        value("fractional-single-entry-flag", "fallback", {"targetingKey": "some-targeting-key"})
        == "single"
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ejOoVL", "lower"),
        ("bY9fO-", "lower"),
        ("SI7p-", "lower"),
        ("6LvT0", "upper"),
        ("ceQdGm", "upper"),
    ],
)
def test_fractional_hash_edges(key: str, expected: str) -> None:
    assert value("fractional-hash-edge-flag", "fallback", {"targetingKey": key}) == expected


@pytest.mark.parametrize(
    ("targeting_key", "tier", "expected"),
    [
        ("jon@company.com", "premium", "premium"),
        ("jon@company.com", "basic", "standard"),
        ("user1", "premium", "standard"),
        ("user1", "basic", "standard"),
    ],
)
def test_fractional_nested_if_as_variant(targeting_key: str, tier: str, expected: str) -> None:
    context = {"targetingKey": targeting_key, "tier": tier}
    assert value("fractional-nested-if-flag", "fallback", context) == expected


@pytest.mark.parametrize(
    ("targeting_key", "color", "expected"),
    [
        ("jon@company.com", "red", "red"),
        ("jon@company.com", "green", "green"),
        ("user1", "red", "blue"),
        ("jon@company.com", "yellow", "fallback"),
        ("jon@company.com", "", "fallback"),
    ],
)
def test_fractional_nested_var_as_variant(targeting_key: str, color: str, expected: str) -> None:
    context = {"targetingKey": targeting_key, "color": color}
    assert value("fractional-nested-var-flag", "fallback", context) == expected
    if expected == "fallback":  # not a variant: an error, so the caller's fallback
        assert resolve("fractional-nested-var-flag", context).reason == "ERROR"


@pytest.mark.parametrize(
    ("targeting_key", "tier", "expected"),
    [
        ("jon@company.com", "premium", "red"),
        ("jon@company.com", "basic", "blue"),
        ("user1", "premium", "red"),
        ("user1", "basic", "blue"),
    ],
)
def test_fractional_nested_if_as_weight(targeting_key: str, tier: str, expected: str) -> None:
    context = {"targetingKey": targeting_key, "tier": tier}
    assert value("fractional-nested-weight-flag", "fallback", context) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [("fractional-as-condition-flag", "hundreds"), ("fractional-as-condition-false-flag", "ones")],
)
def test_fractional_as_a_condition(key: str, expected: str) -> None:
    assert value(key, "zero", {"targetingKey": "some-targeting-key"}) == expected


@pytest.mark.parametrize(
    ("key", "context"),
    [
        ("fractional-null-bucket-key-flag", {}),
        ("fractional-zero-weights-flag", {"targetingKey": "any-user"}),
    ],
)
def test_fractional_without_a_bucket_falls_back_to_the_default_variant(
    key: str, context: dict[str, Any]
) -> None:
    resolution = resolve(key, context)
    assert (resolution.value, resolution.reason) == ("fallback", "DEFAULT")


def test_fractional_negative_weight_is_clamped_to_zero() -> None:
    assert value("fractional-negative-weight-flag", "wrong", {"targetingKey": "any-user"}) == "two"
