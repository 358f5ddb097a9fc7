"""flagd's custom operators: murmur3, fractional (v2), sem_ver, starts_with, ends_with."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from rollout._core.targeting import FlagDefinition, compile_flag
from rollout._core.targeting.compiler import compile_rule, new_budget
from rollout._core.targeting.flagd_operators import fractional
from rollout._core.targeting.murmur3 import murmur3_32


def apply(rule: Any, data: Any = None) -> Any:
    return compile_rule(rule, {}).evaluate(data if data is not None else {}, new_budget())


# Reference vectors of MurmurHash3_x86_32 (Austin Appleby's SMHasher verification values).
@pytest.mark.parametrize(
    ("data", "seed", "expected"),
    [
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\xff\xff\xff\xff", 0, 0x76293B50),
        (b"\x21\x43\x65\x87", 0, 0xF55B516B),
        (b"\x21\x43\x65", 0, 0x7E4A8634),
        (b"\x21\x43", 0, 0xA0F7B07A),
        (b"\x21", 0, 0x72661CF4),
        (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_murmur3_vectors(data: bytes, seed: int, expected: int) -> None:
    assert murmur3_32(data, seed) == expected


def fractional_flag(rule: Any) -> FlagDefinition:
    return FlagDefinition(
        variants={"a": "A", "b": "B", "fallback": "F"}, default_variant="fallback", targeting=rule
    )


def test_fractional_buckets_by_flag_key_and_targeting_key_by_default() -> None:
    shorthand = compile_flag(fractional_flag({"fractional": [["a", 30], ["b", 70]]}), {})
    explicit = compile_flag(
        fractional_flag(
            {
                "fractional": [
                    {"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]},
                    ["a", 30],
                    ["b", 70],
                ]
            }
        ),
        {},
    )
    keys = [f"user-{i}" for i in range(2000)]
    for flag_key in ("checkout", "search"):
        got = [shorthand.resolve(flag_key, {"targetingKey": k}).variant for k in keys]
        assert got == [explicit.resolve(flag_key, {"targetingKey": k}).variant for k in keys]
        counts = Counter(got)
        assert 0.27 < counts["a"] / len(keys) < 0.33  # 30% of a deterministic hash's range
    checkout = [shorthand.resolve("checkout", {"targetingKey": k}).variant for k in keys]
    search = [shorthand.resolve("search", {"targetingKey": k}).variant for k in keys]
    assert checkout != search  # another flag, another split of the same users


def test_fractional_bucket_is_the_hash_scaled_onto_the_total_weight() -> None:
    key = "bucket-me"
    point = (murmur3_32(key.encode()) * 100) >> 32  # v2: high bits of hash * total weight
    rule = {"fractional": [key, ["a", point + 1], ["b", 100 - point - 1]]}
    assert apply(rule) == "a"
    rule = {"fractional": [key, ["a", point], ["b", 100 - point]]}
    assert apply(rule) == "b"


@pytest.mark.parametrize(
    ("rule", "context"),
    [
        ({"fractional": [["a", 1], ["b", 1]]}, {}),  # no targeting key
        ({"fractional": [["a", 1], ["b", 1]]}, {"targetingKey": ""}),
        ({"fractional": [["a", 1], ["b", 1]]}, {"targetingKey": 7}),
        ({"fractional": ["k", ["a", 1.5], ["b", 1]]}, {}),  # weights are integers
        ({"fractional": ["k", ["a", True], ["b", 1]]}, {}),
        ({"fractional": ["k", ["a", "1"], ["b", 1]]}, {}),
        ({"fractional": ["k", ["a", 2**31 - 1], ["b", 1]]}, {}),  # the sum fits an int32
        ({"fractional": ["k", ["a", 2**31], ["b", 1]]}, {}),
        ({"fractional": ["k", [{"a": 1, "b": 2}, 1]]}, {}),  # a variant is a scalar
        ({"fractional": ["k", "a"]}, {}),  # an entry is a list
        ({"fractional": ["k", []]}, {}),
        ({"fractional": ["k"]}, {}),
        ({"fractional": []}, {}),
        ({"fractional": [5, ["a", 1]]}, {"targetingKey": "u"}),  # a number is no bucket key
    ],
)
def test_fractional_answers_null_for_what_flagd_refuses(rule: Any, context: dict[str, Any]) -> None:
    resolution = compile_flag(fractional_flag(rule), {}).resolve("f", context)
    assert (resolution.variant, resolution.reason) == ("fallback", "DEFAULT")


def test_fractional_weight_defaults_to_one_and_null_weight_is_one() -> None:
    assert apply({"fractional": ["x", ["a"]]}) == "a"
    assert apply({"fractional": ["x", ["a", None]]}) == "a"
    assert apply({"fractional": ["x", ["a", 0], ["b"]]}) == "b"


SEMVER = [
    ("1.0.0", "=", "1.0.0", True),
    ("1.0.0", "!=", "1.0.1", True),
    ("1.0.0", "<", "1.0.1", True),
    ("1.10.0", ">", "1.9.0", True),
    ("1.0.0", "<=", "1.0.0", True),
    ("2.0.0", ">=", "10.0.0", False),
    ("1.2.3", "~", "1.2.0", True),
    ("1.3.0", "~", "1.2.0", False),
    ("1.9.9", "^", "1.0.0", True),
    ("2.0.0", "^", "1.0.0", False),
    ("1", "=", "1.0.0", True),
    ("1.2", "=", "1.2.0", True),
    ("v1.0.0", "=", "V1.0.0", True),
    ("1.0.0+build.1", "=", "1.0.0+build.2", True),
    # semver precedence of prereleases (semver.org, item 11)
    ("1.0.0-alpha", "<", "1.0.0-alpha.1", True),
    ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta", True),
    ("1.0.0-alpha.beta", "<", "1.0.0-beta", True),
    ("1.0.0-beta", "<", "1.0.0-beta.2", True),
    ("1.0.0-beta.2", "<", "1.0.0-beta.11", True),
    ("1.0.0-beta.11", "<", "1.0.0-rc.1", True),
    ("1.0.0-rc.1", "<", "1.0.0", True),
]


@pytest.mark.parametrize(("actual", "operator", "target", "expected"), SEMVER)
def test_sem_ver(actual: str, operator: str, target: str, expected: bool) -> None:
    assert apply({"sem_ver": [actual, operator, target]}) is expected


@pytest.mark.parametrize(
    "arguments",
    [
        ["01.0.0", "=", "1.0.0"],  # leading zero
        ["1.0.0-", "=", "1.0.0"],
        ["1.2-pre", "=", "1.2.0"],  # a prerelease needs major.minor.patch
        ["1.0.0-01", "=", "1.0.0"],
        ["", "=", "1.0.0"],
        [None, "=", "1.0.0"],
        [True, "=", "1.0.0"],
        ["1.0.0", "==", "1.0.0"],
        ["1.0.0", 1, "1.0.0"],
        ["1.0.0", "="],
        ["1.0.0", "=", "1.0.0", "x"],
    ],
)
def test_sem_ver_answers_null_for_invalid_input(arguments: list[Any]) -> None:
    assert apply({"sem_ver": arguments}) is None


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"starts_with": ["admin@example.com", "admin@"]}, True),
        ({"starts_with": ["user@example.com", "admin@"]}, False),
        ({"ends_with": ["admin@example.com", "@example.com"]}, True),
        ({"ends_with": ["admin@example.org", "@example.com"]}, False),
        ({"starts_with": ["abc", ""]}, True),
        ({"starts_with": [123, "1"]}, None),
        ({"ends_with": ["abc", None]}, None),
        ({"starts_with": ["abc"]}, None),
        ({"ends_with": ["a", "b", "c"]}, None),
    ],
)
def test_string_comparison(rule: Any, expected: bool | None) -> None:
    assert apply(rule) is expected


def test_prepared_and_general_fractional_agree() -> None:
    """Constant entries are prepared once at compile time; computed ones are read per call."""
    entries: list[list[Any]] = [["a", 10], ["b", 0], ["c", 25], [None, 5], [True, 60]]
    computed = [[{"cat": [name]} if isinstance(name, str) else name, w] for name, w in entries]
    prepared = compile_rule({"fractional": [{"var": "key"}, *entries]}, {})
    general = compile_rule({"fractional": [{"var": "key"}, *computed]}, {})
    shorthand = compile_rule({"fractional": entries}, {})
    for i in range(500):
        data = {"key": f"k{i}", "targetingKey": f"k{i}", "$flagd": {"flagKey": "f"}}
        answer = prepared.evaluate(data, new_budget())
        assert answer == general.evaluate(data, new_budget())
        assert answer == fractional(data, f"k{i}", *entries)
        assert shorthand.evaluate(data, new_budget()) == fractional(data, f"fk{i}", *entries)
        assert answer != "b"  # a weight of 0 is never chosen
