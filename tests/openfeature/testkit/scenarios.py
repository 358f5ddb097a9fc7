"""flagd's evaluator testkit as a table: every row of every applicable scenario, as data.

The facts are those of open-feature/flagd-testbed, folder ``evaluator/`` (release 3.9.0):
the gherkin files ``evaluator/gherkin/*.feature`` (the rows below) and the flag definitions
``evaluator/flags/testkit-flags.json`` (restated in ``flagd-testkit-flags.json`` beside this
module, with the same flags, variants, targeting and evaluators). Where the fractional feature
has ``@fractional-v1`` and ``@fractional-v2`` examples, the rows are v2's (current flagd's
bucketing); v1's examples describe bucketing flagd no longer does and are not rows.

A row says what a step of the scenario asserts: the value (always; for an error, the caller's
default, which OpenFeature answers), and the reason, error code and metadata where the scenario
asserts them (None: not asserted by the scenario).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

__all__ = ["FLAGS_FILE", "ROWS", "Row"]

#: Our restatement of the testkit's flag-definition file.
FLAGS_FILE = Path(__file__).with_name("flagd-testkit-flags.json")

TEMPLATE = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}


@dataclass(frozen=True)
class Row:
    """One example row of one scenario."""

    feature: str  #: the gherkin file's name, without ``.feature``
    scenario: str  #: the scenario's title
    key: str  #: the flag evaluated
    kind: FlagType  #: the typed evaluation asked for (``a String-flag``...)
    default: Any  #: the caller's fallback value
    value: Any  #: the resolved value the scenario expects
    targeting_key: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    reason: Reason | None = None
    error: ErrorCode | None = None
    #: metadata the resolution must contain (key -> value of that exact type); {} = is empty
    metadata: Mapping[str, Any] | None = None

    @property
    def id(self) -> str:
        context = [self.targeting_key or "", *(f"{k}={v!r}" for k, v in self.attributes.items())]
        return f"{self.feature}:{self.key}:{self.default!r}:{','.join(context)}"


def _rows() -> list[Row]:
    rows: list[Row] = []
    # The gherkin's type names (a Boolean-flag, a String-flag...), short to keep rows short.
    BOOL, STR, INT, FLOAT, OBJ = (  # noqa: N806
        FlagType.BOOLEAN,
        FlagType.STRING,
        FlagType.INTEGER,
        FlagType.FLOAT,
        FlagType.OBJECT,
    )

    # evaluation.feature: Resolve basic values
    scenario = "Resolve basic values"
    for key, kind, default, value in [
        ("boolean-flag", BOOL, False, True),
        ("string-flag", STR, "bye", "hi"),
        ("integer-flag", INT, 1, 10),
        ("float-flag", FLOAT, 0.1, 0.5),
        ("object-flag", OBJ, {}, TEMPLATE),
    ]:
        rows.append(Row("evaluation", scenario, key, kind, default, value))

    # targeting.feature: Targeting by targeting key
    for targeting_key, value, reason in [
        ("5c3d8535-f81a-4478-a6d3-afaa4d51199e", "hit", Reason.TARGETING_MATCH),
        ("f20bd32d-703b-48b6-bc8e-79d53c85134a", "miss", Reason.DEFAULT),
    ]:
        rows.append(
            Row(
                "targeting", "Targeting by targeting key", "targeting-key-flag", STR, "fallback",
                value, targeting_key, reason=reason,
            )
        )  # fmt: skip

    # semver.feature
    def semver(scenario: str, key: str, version: Any, value: str, **more: Any) -> None:
        default = more.pop("default", "fallback")
        rows.append(
            Row("semver", scenario, key, STR, default, value, None, {"version": version}, **more)
        )

    for version, value in [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
        ("2.0.0-alpha", "lesser"),
        ("2.0.0.0", "none"),
    ]:
        semver("Numeric comparison", "equal-greater-lesser-version-flag", version, value)
    for version, value in [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")]:
        semver(
            "Semantic comparison (minor/major range)", "major-minor-version-flag", version, value
        )
    for key, version in [
        ("semver-invalid-version-flag", "not-a-version"),
        ("semver-invalid-operator-flag", "1.0.0"),
    ]:
        semver(
            "sem_ver returns null for invalid input and falls back to default variant",
            key, version, "fallback", default="wrong", reason=Reason.DEFAULT,
        )  # fmt: skip
    for version, value in [
        ("1.0.0", "match"),
        ("v1.0.0", "match"),
        ("V1.0.0", "match"),
        ("2.0.0", "no-match"),
    ]:
        semver("v-prefix handling", "semver-v-prefix-flag", version, value)
    # "1" of type Integer is 1, of type Float 1.0: the context value is a number there.
    partial: list[tuple[str | float, str]] = [
        ("1.5.0", "match"),
        ("1.0.0", "match"),
        ("1.0", "match"),
        ("1", "match"),
        (1, "match"),
        (1.0, "match"),
        (1.2, "match"),
        ("2.0.0", "no-match"),
    ]
    for loose, value in partial:
        semver("partial version string handling", "semver-partial-version-flag", loose, value)
    numeric: list[tuple[str | float, str]] = [
        (1.2, "match"),
        (1.1, "no-match"),
        (2, "match"),
        (1, "no-match"),
        ("1.2", "match"),
    ]
    for loose, value in numeric:
        semver("numeric context value coercion", "semver-numeric-context-flag", loose, value)
    for version, value in [("1.0.0", "match"), ("1.0.0+other", "match"), ("2.0.0", "no-match")]:
        semver("build metadata ignored in comparison", "semver-build-metadata-flag", version, value)
    semver(
        "sem_ver returns null for wrong argument count", "semver-wrong-args-flag", "1.0.0",
        "fallback", default="wrong", reason=Reason.DEFAULT,
    )  # fmt: skip

    # string.feature
    for id_, value in [
        ("abcdef", "prefix"),
        ("uvwxyz", "postfix"),
        ("abcxyz", "prefix"),
        ("lmnopq", "none"),
    ]:
        rows.append(
            Row(
                "string",
                "Substring operators",
                "starts-ends-flag",
                STR,
                "fallback",
                value,
                None,
                {"id": id_},
            )
        )
    for key in ["starts-with-non-string-flag", "ends-with-non-string-flag"]:
        rows.append(
            Row(
                "string", "starts_with and ends_with return null for non-string input", key, STR,
                "wrong", "fallback", None, {"num": 123}, reason=Reason.DEFAULT,
            )
        )  # fmt: skip
    for key in ["starts-with-wrong-args-flag", "ends-with-wrong-args-flag"]:
        rows.append(
            Row(
                "string", "starts_with and ends_with return null for wrong argument count", key,
                STR, "wrong", "fallback", reason=Reason.DEFAULT,
            )
        )  # fmt: skip

    # fractional.feature (v2 examples, and the scenarios that have no v1/v2 split)
    def fractional(
        scenario: str, key: str, value: str, targeting_key: str | None = None, **more: Any
    ) -> None:
        default = more.pop("default", "fallback")
        attributes = more.pop("attributes", {})
        rows.append(
            Row("fractional", scenario, key, STR, default, value, targeting_key, attributes, **more)
        )

    for name, value in [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ]:
        fractional(
            "Fractional operator", "fractional-flag", value, attributes={"user": {"name": name}}
        )
    for targeting_key, value in [("jon@company.com", "heads"), ("jane@company.com", "tails")]:
        fractional(
            "Fractional operator shorthand", "fractional-flag-shorthand", value, targeting_key
        )
    for name, value in [
        ("seven", "hearts"),
        ("eight", "diamonds"),
        ("nine", "clubs"),
        ("two", "spades"),
    ]:
        fractional(
            "Fractional operator with shared seed", "fractional-flag-A-shared-seed", value,
            attributes={"user": {"name": name}},
        )  # fmt: skip
    fractional(
        "Fractional operator with single entry always resolves to the only variant",
        "fractional-single-entry-flag", "single", "some-targeting-key",
    )  # fmt: skip
    for name, value in [
        ("seven", "ace-of-hearts"),
        ("eight", "ace-of-diamonds"),
        ("nine", "ace-of-clubs"),
        ("two", "ace-of-spades"),
    ]:
        fractional(
            "Second fractional operator with shared seed", "fractional-flag-B-shared-seed", value,
            attributes={"user": {"name": name}},
        )  # fmt: skip
    for targeting_key, value in [
        ("ejOoVL", "lower"),
        ("bY9fO-", "lower"),
        ("SI7p-", "lower"),
        ("6LvT0", "upper"),
        ("ceQdGm", "upper"),
    ]:
        fractional(
            "Fractional operator hash edge cases", "fractional-hash-edge-flag", value, targeting_key
        )
    for targeting_key, tier, value in [
        ("jon@company.com", "premium", "premium"),
        ("jon@company.com", "basic", "standard"),
        ("user1", "premium", "standard"),
        ("user1", "basic", "standard"),
    ]:
        fractional(
            "Fractional operator with nested if expression as variant name",
            "fractional-nested-if-flag", value, targeting_key, attributes={"tier": tier},
        )  # fmt: skip
    # A bucket naming no variant ("yellow", ""): the scenario asserts only the value, which
    # is the caller's default; flagd's evaluator answers it with error GENERAL (a targeting
    # result that is not a variant, core/pkg/evaluator/json.go), and so must we.
    general = ErrorCode.GENERAL
    for targeting_key, color, value, error in [
        ("jon@company.com", "red", "red", None),
        ("jon@company.com", "green", "green", None),
        ("user1", "red", "blue", None),
        ("jon@company.com", "yellow", "fallback", general),
        ("jon@company.com", "", "fallback", general),
    ]:
        fractional(
            "Fractional operator with nested var expression as variant name",
            "fractional-nested-var-flag", value, targeting_key, attributes={"color": color},
            error=error,
        )  # fmt: skip
    for targeting_key, tier, value in [
        ("jon@company.com", "premium", "red"),
        ("jon@company.com", "basic", "blue"),
        ("user1", "premium", "red"),
        ("user1", "basic", "blue"),
    ]:
        fractional(
            "Fractional operator with nested if expression as weight",
            "fractional-nested-weight-flag", value, targeting_key, attributes={"tier": tier},
        )  # fmt: skip
    fractional(
        "Fractional as condition", "fractional-as-condition-flag", "hundreds",
        "some-targeting-key", default="zero",
    )  # fmt: skip
    fractional(
        "Fractional as condition evaluates false path", "fractional-as-condition-false-flag",
        "ones", "some-targeting-key", default="zero",
    )  # fmt: skip
    fractional(
        "fractional operator with missing bucket key falls back to default variant",
        "fractional-null-bucket-key-flag", "fallback", default="wrong", reason=Reason.DEFAULT,
    )  # fmt: skip
    fractional(
        "fractional with all-zero bucket weights falls back to default variant",
        "fractional-zero-weights-flag", "fallback", "any-user", default="wrong",
        reason=Reason.DEFAULT,
    )  # fmt: skip
    fractional(
        "fractional negative bucket weight is clamped to zero",
        "fractional-negative-weight-flag", "two", "any-user", default="wrong",
    )  # fmt: skip

    # zero-values.feature
    zeros = [
        ("boolean", BOOL, True, False),
        ("string", STR, "hi", ""),
        ("integer", INT, 1, 0),
        ("float", FLOAT, 0.1, 0.0),
    ]
    for prefix, kind, default, value in [*zeros, ("object", OBJ, {"a": 1}, {})]:
        rows.append(
            Row(
                "zero-values", "Resolve zero values statically", f"{prefix}-zero-flag", kind,
                default, value, reason=Reason.STATIC,
            )
        )  # fmt: skip
    for email, reason, scenario in [
        (
            "ballmer@macrosoft.com",
            Reason.TARGETING_MATCH,
            "Resolve zero value with targeting match",
        ),
        (
            "ballmer@none.com",
            Reason.DEFAULT,
            "Resolve zero value using default when targeting does not match",
        ),
    ]:
        for prefix, kind, default, value in zeros:
            rows.append(
                Row(
                    "zero-values", scenario, f"{prefix}-targeted-zero-flag", kind, default, value,
                    None, {"email": email}, reason=reason,
                )
            )  # fmt: skip

    # disabled.feature: the caller's default, reason DISABLED
    for prefix, kind, default in [
        ("boolean", BOOL, False),
        ("string", STR, "bye"),
        ("integer", INT, 1),
        ("float", FLOAT, 0.1),
        ("object", OBJ, {}),
    ]:
        rows.append(
            Row(
                "disabled", "Resolve disabled flag returns reason DISABLED with the default value",
                f"disabled-{prefix}-flag", kind, default, default, reason=Reason.DISABLED,
            )
        )  # fmt: skip

    # errors.feature
    rows.append(
        Row(
            "errors",
            "Flag not found",
            "missing-flag",
            STR,
            "uh-oh",
            "uh-oh",
            error=ErrorCode.FLAG_NOT_FOUND,
        )
    )
    rows.append(
        Row("errors", "Type mismatch", "wrong-flag", INT, 13, 13, error=ErrorCode.TYPE_MISMATCH)
    )

    # metadata.feature
    rows.append(
        Row(
            "metadata", "Returns flag metadata", "metadata-flag", BOOL, False, True,
            metadata={"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True},
        )
    )  # fmt: skip
    for key, kind, default, value in [
        ("boolean-flag", BOOL, True, True),
        ("integer-flag", INT, 23, 10),
        ("float-flag", FLOAT, 2.3, 0.5),
        ("string-flag", STR, "value", "hi"),
    ]:
        rows.append(
            Row(
                "metadata", "Returns no metadata for flags without metadata", key, kind, default,
                value, metadata={},
            )
        )  # fmt: skip

    # evaluator-refs.feature
    ballmer = {"email": "ballmer@macrosoft.com"}
    for key, value in [
        ("some-email-targeted-flag", "hi"),
        ("some-other-email-targeted-flag", "yes"),
    ]:
        rows.append(
            Row(
                "evaluator-refs",
                "Evaluator reuse via $ref",
                key,
                STR,
                "fallback",
                value,
                None,
                ballmer,
            )
        )
    for email, value in [("ballmer@macrosoft.com", "hi"), ("user@example.com", "bye")]:
        for spacing in ["compact", "space-after-colon", "space-around-colon"]:
            rows.append(
                Row(
                    "evaluator-refs",
                    "Evaluator $ref resolves regardless of whitespace around the colon",
                    f"ref-whitespace-{spacing}-flag", STR, "fallback", value, None,
                    {"email": email}, reason=Reason.TARGETING_MATCH,
                )
            )  # fmt: skip
    rows.append(
        Row(
            "evaluator-refs", "Ref to nonexistent evaluator yields parse error",
            "ref-to-nonexistent-evaluator-flag", STR, "fallback", "fallback",
            error=ErrorCode.PARSE_ERROR,
        )
    )  # fmt: skip

    # no-default-variant.feature
    for key, kind, email, default, value, reason in [
        ("null-default-flag", BOOL, "", True, True, Reason.DEFAULT),
        ("null-default-flag", BOOL, "", False, False, Reason.DEFAULT),
        ("undefined-default-flag", INT, "", 100, 100, Reason.DEFAULT),
        (
            "no-default-flag-null-targeting-variant",
            STR,
            "wozniak@orange.com",
            "Inventor",
            "Inventor",
            Reason.DEFAULT,
        ),
        (
            "no-default-flag-null-targeting-variant",
            STR,
            "jobs@orange.com",
            "CEO",
            "CEO",
            Reason.TARGETING_MATCH,
        ),
        (
            "no-default-flag-undefined-targeting-variant",
            STR,
            "wozniak@orange.com",
            "Retired",
            "Retired",
            Reason.DEFAULT,
        ),
    ]:
        rows.append(
            Row(
                "no-default-variant", "Resolve flag with no default variant", key, kind, default,
                value, None, {"email": email}, reason=reason,
            )
        )  # fmt: skip
    return rows


#: Every row, in the order of the features above.
ROWS: list[Row] = _rows()
