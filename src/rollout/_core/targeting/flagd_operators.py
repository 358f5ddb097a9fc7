"""flagd's custom JsonLogic operators: fractional, sem_ver, starts_with, ends_with.

They follow flagd's Go evaluator (core/pkg/evaluator): their arguments arrive evaluated, and
a wrong argument (count, type, an invalid version or operator) makes them answer null, not
raise, so a rule built on them falls back to the flag's default variant (reason DEFAULT).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from .murmur3 import murmur3_32
from .operators import Operator
from .semver import compare, parse_version

__all__ = [
    "FLAGD_DATA_OPERATORS",
    "FLAGD_OPERATORS",
    "bucket",
    "distribution",
    "fractional",
    "fractional_of_constants",
    "pick",
]

_MAX_WEIGHT = 2**31 - 1  # flagd keeps every weight and their sum within an int32


def _flag_key(data: Mapping[str, Any]) -> str:
    flagd = data.get("$flagd")
    key = flagd.get("flagKey") if type(flagd) is dict or isinstance(flagd, Mapping) else None
    return key if type(key) is str else ""


def _weight(entry: list[Any] | tuple[Any, ...]) -> int | None:
    """The entry's weight (1 when absent, negative clamped to 0); None when it is invalid."""
    if len(entry) < 2 or entry[1] is None:
        return 1
    weight = entry[1]
    if type(weight) is int:  # the usual case
        return max(weight, 0) if weight <= _MAX_WEIGHT else None
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


# Cached values are at most this long: a context can send any text (a targeting key of a
# megabyte), and a cache of recent ones must not keep thousands of them alive.
CACHED_TEXT_LENGTH = 256


def _hash(text: str) -> int:
    return _cached_hash(text) if len(text) <= CACHED_TEXT_LENGTH else _murmur3(text)


@lru_cache(maxsize=8192)  # a user is usually checked again and again for the same flag
def _cached_hash(text: str) -> int:
    return _murmur3(text)


def _murmur3(text: str) -> int:
    return murmur3_32(text.encode("utf-8", "surrogatepass"))


Distribution = tuple[tuple[Any, ...], tuple[int, ...]]  # variants, running sums of weights


def distribution(entries: Sequence[Any]) -> Distribution | None:
    """The entries' variants and running weight sums, or None where flagd answers null."""
    variants: list[Any] = []
    ends: list[int] = []
    total = 0
    for entry in entries:
        if not isinstance(entry, list | tuple) or not entry:
            return None
        variant = entry[0]
        if type(variant) is not str and not isinstance(variant, bool | int | float | None):
            return None
        weight = _weight(entry)
        if weight is None:
            return None
        total += weight
        variants.append(variant)
        ends.append(total)
    if total == 0 or total > _MAX_WEIGHT:
        return None
    return tuple(variants), tuple(ends)


def pick(bucket_by: str, split: Distribution) -> Any:
    """The variant whose share of [0, total) the bucketing value's hash falls in."""
    variants, ends = split
    return variants[bisect_right(ends, bucket((_hash(bucket_by)), ends[-1]))]


def default_bucket(data: Mapping[str, Any]) -> str | None:
    """flagKey + targetingKey, flagd's bucketing value when none is given; None without one."""
    targeting_key = data.get("targetingKey")
    if type(targeting_key) is not str or targeting_key == "":
        return None
    return _flag_key(data) + targeting_key


def fractional(data: Any, *arguments: Any) -> Any:
    """The variant (any JSON scalar) that the bucketing value falls in, or None."""
    if not arguments or not (type(data) is dict or isinstance(data, Mapping)):
        return None
    first = arguments[0]
    if type(first) is str:
        bucket_by: str | None = first
        entries = arguments[1:]
    else:
        # No bucketing value (shorthand, or an expression that gave null): flagd buckets by
        # flagKey + targetingKey, and answers null when there is no targeting key.
        entries = arguments[1:] if first is None else arguments
        bucket_by = default_bucket(data)
    split = distribution(entries) if bucket_by is not None else None
    return None if split is None else pick(bucket_by, split)  # type: ignore[arg-type]


def fractional_of_constants(first: Any, entries: Sequence[Any]) -> Callable[[Any, Any], Any]:
    """``fractional`` whose entries are constants: checked once, then a hash and a bisect.

    The returned function takes the data and the evaluated first argument (``first`` says
    whether there is one: True for an expression, False for the shorthand).
    """
    split = distribution(entries)

    def shorthand(data: Any, _value: Any) -> Any:
        if split is None or not (type(data) is dict or isinstance(data, Mapping)):
            return None
        bucket_by = default_bucket(data)
        return None if bucket_by is None else pick(bucket_by, split)

    def keyed(data: Any, value: Any) -> Any:
        if type(value) is str and split is not None:
            if type(data) is dict or isinstance(data, Mapping):
                return pick(value, split)
            return None
        if value is None:
            return shorthand(data, value)
        return fractional(data, value, *entries)  # a list or a number: flagd's general reading

    return keyed if first else shorthand


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
