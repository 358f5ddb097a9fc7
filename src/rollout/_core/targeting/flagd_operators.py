"""flagd's custom JsonLogic operators: fractional, sem_ver, starts_with, ends_with.

They follow flagd's Go evaluator (core/pkg/evaluator): their arguments arrive evaluated, and
a wrong argument (count, type, an invalid version or operator) makes them answer null, not
raise, so a rule built on them falls back to the flag's default variant (reason DEFAULT).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .murmur3 import murmur3_32
from .operators import Operator
from .semver import compare, parse_version

__all__ = ["FLAGD_OPERATORS", "bucket", "fractional"]

_MAX_WEIGHT = 2**31 - 1  # flagd keeps every weight and their sum within an int32


def _flag_key(data: Mapping[str, Any]) -> str:
    flagd = data.get("$flagd")
    key = flagd.get("flagKey") if isinstance(flagd, Mapping) else None
    return key if isinstance(key, str) else ""


def _weight(entry: list[Any] | tuple[Any, ...]) -> int | None:
    """The entry's weight (1 when absent, negative clamped to 0); None when it is invalid."""
    if len(entry) < 2 or entry[1] is None:
        return 1
    weight = entry[1]
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        return None
    if not math.isfinite(weight) or weight != int(weight):
        return None  # flagd: "weights must be integers"
    if weight > _MAX_WEIGHT:
        return None
    return max(int(weight), 0)


def bucket(hash_value: int, total_weight: int) -> int:
    """flagd's v2 bucketing: the 32-bit hash scaled onto [0, total_weight) without floats."""
    return (hash_value * total_weight) >> 32


def fractional(data: Any, *arguments: Any) -> Any:
    """The variant (any JSON scalar) that the bucketing value falls in, or None."""
    if not arguments or not isinstance(data, Mapping):
        return None
    first = arguments[0]
    if isinstance(first, str):
        bucket_by, entries = first, arguments[1:]
    else:
        # No bucketing value (shorthand, or an expression that gave null): flagd buckets by
        # flagKey + targetingKey, and answers null when there is no targeting key.
        entries = arguments[1:] if first is None else arguments
        targeting_key = data.get("targetingKey")
        if not isinstance(targeting_key, str) or targeting_key == "":
            return None
        bucket_by = _flag_key(data) + targeting_key
    variants: list[Any] = []
    weights: list[int] = []
    for entry in entries:
        if not isinstance(entry, list | tuple) or not entry:
            return None
        variant = entry[0]
        if variant is not None and not isinstance(variant, str | bool | int | float):
            return None
        weight = _weight(entry)
        if weight is None:
            return None
        variants.append(variant)
        weights.append(weight)
    total = sum(weights)
    if total == 0 or total > _MAX_WEIGHT:
        return None
    point = bucket(murmur3_32(bucket_by.encode("utf-8", "surrogatepass")), total)
    end = 0
    for variant, weight in zip(variants, weights, strict=True):
        end += weight
        if point < end:
            return variant
    return None  # unreachable: point < total


def sem_ver(*arguments: Any) -> bool | None:
    """``[version, operator, version]`` per flagd; None for a wrong count, version or operator."""
    if len(arguments) != 3:
        return None
    actual, operator, target = arguments
    a, b = parse_version(actual), parse_version(target)
    if a is None or b is None or not isinstance(operator, str):
        return None
    if operator == "^":
        return a.major == b.major
    if operator == "~":
        return a.major == b.major and a.minor == b.minor
    order = compare(a, b)
    answers = {
        "=": order == 0,
        "!=": order != 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }
    return answers.get(operator)


def starts_with(*arguments: Any) -> bool | None:
    if len(arguments) != 2 or not all(isinstance(a, str) for a in arguments):
        return None
    return str(arguments[0]).startswith(arguments[1])


def ends_with(*arguments: Any) -> bool | None:
    if len(arguments) != 2 or not all(isinstance(a, str) for a in arguments):
        return None
    return str(arguments[0]).endswith(arguments[1])


# No arity bounds at write time: flagd loads such rules and answers null when they run (its
# testkit checks that fallback), so a wrong count is an evaluation-time null here too.
FLAGD_OPERATORS: dict[str, Operator] = {
    "sem_ver": Operator(0, None, sem_ver),
    "starts_with": Operator(0, None, starts_with),
    "ends_with": Operator(0, None, ends_with),
}
# fractional reads the data ($flagd.flagKey, targetingKey): it is called with the data first.
FLAGD_DATA_OPERATORS: dict[str, Operator] = {"fractional": Operator(0, None, fractional)}
