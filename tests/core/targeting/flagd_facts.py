"""A flagd document with the facts flagd's evaluator testkit relies on, written for these tests.

The testkit (open-feature/flagd-testbed, evaluator/gherkin/*.feature) evaluates named flags
from its own flag file; this builds an equivalent document from the scenarios' facts: the same
flag keys, variants, default variants, states, metadata and rules. ``DOCUMENT_TEXT`` is the same
document as JSON text, with ``$ref`` written with the three whitespace styles the evaluator-refs
scenarios name (flagd resolves references in the text).
"""

from __future__ import annotations

import json
from typing import Any

BALLMER = "ballmer@macrosoft.com"
IS_BALLMER = {"==": [BALLMER, {"var": ["email"]}]}
PICS = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}
SUITS = ["clubs", "diamonds", "hearts", "spades"]


def flag(variants: dict[str, Any], default: str | None, **extra: Any) -> dict[str, Any]:
    state = "DISABLED" if extra.pop("disabled", False) else "ENABLED"
    body: dict[str, Any] = {"state": state, "variants": variants}
    if default is not None or extra.pop("null_default", False):
        body["defaultVariant"] = default
    return body | extra


def named(*names: str) -> dict[str, str]:
    """Variants whose values are their names (most string flags of the testkit)."""
    return {name: name for name in names}


def ref(name: str) -> dict[str, str]:
    return {"$ref": name}


def if_ballmer(then: str, otherwise: str | None = None) -> dict[str, Any]:
    arguments: list[Any] = [ref("is_ballmer"), then]
    return {"if": arguments + ([otherwise] if otherwise is not None else [])}


def sem_ver(operator: str, version: str) -> dict[str, Any]:
    return {"sem_ver": [{"var": "version"}, operator, version]}


def fractional(*buckets: list[Any], by: Any = None) -> dict[str, Any]:
    return {"fractional": ([by] if by is not None else []) + list(buckets)}


def match_or_not(condition: dict[str, Any]) -> dict[str, Any]:
    return flag(
        named("match", "no-match"), "no-match", targeting={"if": [condition, "match", "no-match"]}
    )


TRUE_FALSE_FALLBACK = named("true", "false", "fallback")
ZERO = {"boolean": (False, True), "string": ("", "str"), "integer": (0, 1), "float": (0.0, 1.0)}
BASIC: dict[str, tuple[dict[str, Any], str]] = {
    "boolean-flag": ({"on": True, "off": False}, "on"),
    "string-flag": ({"greeting": "hi", "parting": "bye"}, "greeting"),
    "integer-flag": ({"one": 1, "ten": 10}, "ten"),
    "float-flag": ({"tenth": 0.1, "half": 0.5}, "half"),
    "object-flag": ({"empty": {}, "template": PICS}, "template"),
}


def _flags() -> dict[str, dict[str, Any]]:
    flags: dict[str, dict[str, Any]] = {}
    for key, (variants, default) in BASIC.items():
        flags[key] = flag(variants, default)
        flags[f"disabled-{key}"] = flag(variants, default, disabled=True)
    for kind, (zero, non_zero) in ZERO.items():
        variants = {"zero": zero, "non-zero": non_zero}
        flags[f"{kind}-zero-flag"] = flag(variants, "zero")
        flags[f"{kind}-targeted-zero-flag"] = flag(variants, "zero", targeting=if_ballmer("zero"))
    flags["object-zero-flag"] = flag({"zero": {}, "non-zero": PICS}, "zero")
    flags["wrong-flag"] = flag({"one": "uno", "two": "dos"}, "one")
    flags["null-default-flag"] = flag({"on": True, "off": False}, None, null_default=True)
    flags["undefined-default-flag"] = flag({"small": 10, "big": 1000}, None)
    is_jobs = {"==": ["jobs@orange.com", {"var": ["email"]}]}
    ceo = {"normal": "CFO", "special": "CEO"}
    flags["no-default-flag-null-targeting-variant"] = flag(
        ceo, None, targeting={"if": [is_jobs, "special", None]}
    )
    flags["no-default-flag-undefined-targeting-variant"] = flag(
        ceo, None, targeting={"if": [is_jobs, "special"]}
    )
    flags["metadata-flag"] = flag(
        {"on": True, "off": False},
        "on",
        metadata={"string": "1.0.2", "integer": 2, "boolean": True, "float": 0.1},
    )
    flags["some-email-targeted-flag"] = flag(
        named("hi", "bye", "none"), "none", targeting=if_ballmer("hi", "bye")
    )
    flags["some-other-email-targeted-flag"] = flag(
        named("yes", "no", "none"), "none", targeting=if_ballmer("yes", "no")
    )
    quarter = [[suit, 25] for suit in SUITS]
    by_name = {"cat": [{"var": "$flagd.flagKey"}, {"var": "user.name"}]}
    flags["fractional-flag"] = flag(
        named(*SUITS, "wild"), "wild", targeting=fractional(*quarter, by=by_name)
    )
    flags["fractional-flag-shorthand"] = flag(
        named("heads", "tails", "draw"), "draw", targeting=fractional(["heads"], ["tails", 1])
    )
    shared_seed = {"cat": ["shared-seed", {"var": "user.name"}]}
    flags["fractional-flag-A-shared-seed"] = flag(
        named(*SUITS, "wild"), "wild", targeting=fractional(*quarter, by=shared_seed)
    )
    aces = {suit: f"ace-of-{suit}" for suit in SUITS} | {"wild": "wild"}
    flags["fractional-flag-B-shared-seed"] = flag(
        aces, "wild", targeting=fractional(*quarter, by=shared_seed)
    )
    by_key = {"var": "targetingKey"}
    flags["fractional-hash-edge-flag"] = flag(
        named("lower", "upper"),
        "lower",
        targeting=fractional(["lower", 50], ["upper", 50], by=by_key),
    )
    starts, ends = {"starts_with": [{"var": "id"}, "abc"]}, {"ends_with": [{"var": "id"}, "xyz"]}
    flags["starts-ends-flag"] = flag(
        named("prefix", "postfix", "none"),
        "none",
        targeting={"if": [starts, "prefix", {"if": [ends, "postfix", "none"]}]},
    )
    flags["equal-greater-lesser-version-flag"] = flag(
        named("equal", "greater", "lesser", "none"),
        "none",
        targeting={
            "if": [
                sem_ver("=", "2.0.0"),
                "equal",
                {
                    "if": [
                        sem_ver(">", "2.0.0"),
                        "greater",
                        {"if": [sem_ver("<", "2.0.0"), "lesser", "none"]},
                    ]
                },
            ]
        },
    )
    flags["major-minor-version-flag"] = flag(
        named("minor", "major", "none"),
        "none",
        targeting={
            "if": [sem_ver("~", "3.0.0"), "minor", {"if": [sem_ver("^", "3.0.0"), "major", "none"]}]
        },
    )
    hit_key = {"==": [{"var": "targetingKey"}, "5c3d8535-f81a-4478-a6d3-afaa4d51199e"]}
    flags["targeting-key-flag"] = flag(
        named("miss", "hit"), "miss", targeting={"if": [hit_key, "hit", None]}
    )
    is_premium = {"==": [{"var": "tier"}, "premium"]}
    flags["fractional-nested-if-flag"] = flag(
        named("premium", "standard", "fallback"),
        "fallback",
        targeting=fractional(
            [{"if": [is_premium, "premium", "standard"]}, 50], ["standard", 50], by=by_key
        ),
    )
    flags["fractional-nested-var-flag"] = flag(
        named("red", "green", "blue", "fallback"),
        "fallback",
        targeting=fractional([{"var": "color"}, 50], ["blue", 50], by=by_key),
    )
    flags["fractional-nested-weight-flag"] = flag(
        named("red", "blue", "fallback"),
        "fallback",
        targeting=fractional(["red", {"if": [is_premium, 100, 0]}], ["blue", 10], by=by_key),
    )
    sizes = {"big": "hundreds", "small": "ones", "fallback": "zero"}
    for suffix, weights in (("", (0, 100)), ("-false", (100, 0))):
        condition = fractional([False, weights[0]], [True, weights[1]])
        flags[f"fractional-as-condition{suffix}-flag"] = flag(
            sizes, "fallback", targeting={"if": [condition, "big", "small"]}
        )
    flags["fractional-single-entry-flag"] = flag(
        named("single", "fallback"), "fallback", targeting=fractional(["single", 1])
    )
    odd_rules = {
        "semver-invalid-version-flag": sem_ver("=", "1.0.0"),
        "semver-invalid-operator-flag": sem_ver("===", "1.0.0"),
        "semver-wrong-args-flag": {"sem_ver": [{"var": "version"}, "="]},
        "starts-with-non-string-flag": {"starts_with": [{"var": "num"}, "abc"]},
        "ends-with-non-string-flag": {"ends_with": [{"var": "num"}, "xyz"]},
        "starts-with-wrong-args-flag": {"starts_with": ["abc"]},
        "ends-with-wrong-args-flag": {"ends_with": ["xyz"]},
    }
    for key, rule in odd_rules.items():
        flags[key] = flag(TRUE_FALSE_FALLBACK, "fallback", targeting=rule)
    two = named("one", "two", "fallback")
    flags["fractional-null-bucket-key-flag"] = flag(
        two, "fallback", targeting=fractional(["one", 50], ["two", 50], by={"var": "missing_key"})
    )
    flags["fractional-zero-weights-flag"] = flag(
        two, "fallback", targeting=fractional(["one", 0], ["two", 0], by=by_key)
    )
    flags["fractional-negative-weight-flag"] = flag(
        two, "fallback", targeting=fractional(["one", -50], ["two", 100], by=by_key)
    )
    flags["semver-v-prefix-flag"] = match_or_not(sem_ver("=", "v1.0.0"))
    flags["semver-partial-version-flag"] = match_or_not(sem_ver("^", "1"))
    flags["semver-build-metadata-flag"] = match_or_not(sem_ver("=", "1.0.0+build"))
    flags["semver-numeric-context-flag"] = match_or_not(sem_ver(">", "1.1"))
    hi_bye = named("hi", "bye", "fallback")
    for style in ("compact", "space-after-colon", "space-around-colon"):
        flags[f"ref-whitespace-{style}-flag"] = flag(
            hi_bye, "fallback", targeting={"if": [ref(f"@{style}@"), "hi", "bye"]}
        )
    flags["ref-to-nonexistent-evaluator-flag"] = flag(
        named("hit", "miss", "fallback"),
        "fallback",
        targeting={"if": [ref("nonexistent_evaluator"), "hit", "miss"]},
    )
    return flags


def _text() -> str:
    """The document as JSON text, each whitespace style of $ref written as the scenarios say."""
    text = json.dumps({"flags": _flags(), "$evaluators": {"is_ballmer": IS_BALLMER}}, indent=2)
    styles = {
        "compact": '"$ref":"is_ballmer"',
        "space-after-colon": '"$ref": "is_ballmer"',
        "space-around-colon": '"$ref" : "is_ballmer"',
    }
    for style, written in styles.items():
        text = text.replace(f'"$ref": "@{style}@"', written)
    return text


DOCUMENT_TEXT = _text()
DOCUMENT: dict[str, Any] = json.loads(DOCUMENT_TEXT)
