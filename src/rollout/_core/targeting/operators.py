"""JsonLogic's eager operators (their arguments are evaluated first), written once.

Each entry is the operator's arity (what flagd's schema allows; None: no upper bound) and a
function of the evaluated arguments, with json-logic-js's semantics: JavaScript coercions
(rollout._core.targeting.jsvalues) rather than Python's. Operators that decide which arguments
to evaluate (if, and, or, map, ...) are compiled in rollout._core.targeting.compiler;
operators that read the data (var, missing, and flagd's fractional) take it first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .jsvalues import (
    js_le,
    js_lt,
    loose_eq,
    parse_float,
    strict_eq,
    to_number,
    to_string,
    truthy,
)

__all__ = ["DATA_OPERATORS", "PURE_OPERATORS", "Operator", "lookup", "missing"]

_ABSENT = object()


class Operator(NamedTuple):
    min_args: int
    max_args: int | None
    function: Callable[..., Any]


def _lt(a: Any, b: Any, c: Any = _ABSENT) -> bool:
    if c is _ABSENT:
        return js_lt(a, b)
    return js_lt(a, b) and js_lt(b, c)  # between: a < b < c


def _le(a: Any, b: Any, c: Any = _ABSENT) -> bool:
    if c is _ABSENT:
        return js_le(a, b)
    return js_le(a, b) and js_le(b, c)


def _add(*values: Any) -> float:
    total: float = 0
    for value in values:
        total += parse_float(value)
    return total


def _multiply(first: Any, *rest: Any) -> Any:
    product = parse_float(first)
    for value in rest:
        product *= parse_float(value)
    return product


def _subtract(a: Any, b: Any = _ABSENT, *_ignored: Any) -> float:
    """Negation, or a - b (json-logic-js ignores further arguments)."""
    if b is _ABSENT:
        return -to_number(a)
    return to_number(a) - to_number(b)


def _divide(a: Any, b: Any) -> float:
    x, y = to_number(a), to_number(b)
    if y == 0:  # JavaScript: x / 0 is +-Infinity, 0 / 0 and NaN / 0 are NaN
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1, y)
    return x / y


def _remainder(a: Any, b: Any) -> float:
    x, y = to_number(a), to_number(b)
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    return math.fmod(x, y)  # JavaScript's % keeps the dividend's sign, like fmod


def _max(*values: Any) -> float:
    numbers = [to_number(value) for value in values]
    return math.nan if any(math.isnan(n) for n in numbers) else max(numbers)


def _min(*values: Any) -> float:
    numbers = [to_number(value) for value in values]
    return math.nan if any(math.isnan(n) for n in numbers) else min(numbers)


def _in(needle: Any, haystack: Any) -> bool:
    if isinstance(haystack, str):
        return to_string(needle) in haystack
    if isinstance(haystack, list | tuple):
        return any(strict_eq(needle, item) for item in haystack)
    return False


def _cat(*values: Any) -> str:
    return "".join(to_string(value) for value in values)


def _clamp_index(number: float, size: int) -> int:
    if math.isnan(number):  # NaN counts as 0
        return 0
    return int(min(max(number, -size - 1), size + 1))  # also keeps +-Infinity in range


def _js_substr(text: str, start: float, length: float | None) -> str:
    """JavaScript's String.prototype.substr(start, length)."""
    size = len(text)
    begin = _clamp_index(start, size)
    begin = max(size + begin, 0) if begin < 0 else min(begin, size)
    if length is None:
        return text[begin:]
    count = min(max(_clamp_index(length, size), 0), size - begin)
    return text[begin : begin + count]


def _substr(source: Any, start: Any = None, end: Any = _ABSENT) -> str:
    text = to_string(source)
    begin = to_number(start)
    if end is _ABSENT:
        return _js_substr(text, begin, None)
    count = to_number(end)
    if count < 0:  # a negative length drops that many characters from the end
        rest = _js_substr(text, begin, None)
        return rest[: max(len(rest) + int(count), 0)]
    return _js_substr(text, begin, count)


def _merge(*values: Any) -> list[Any]:
    merged: list[Any] = []
    for value in values:
        if isinstance(value, list | tuple):
            merged.extend(value)
        else:
            merged.append(value)
    return merged


PURE_OPERATORS: dict[str, Operator] = {
    "==": Operator(2, 2, loose_eq),
    "!=": Operator(2, 2, lambda a, b: not loose_eq(a, b)),
    "===": Operator(2, 2, strict_eq),
    "!==": Operator(2, 2, lambda a, b: not strict_eq(a, b)),
    # json-logic-js reads the first argument only (none: undefined, which is falsy).
    "!": Operator(0, None, lambda a=None, *_ignored: not truthy(a)),
    "!!": Operator(0, None, lambda a=None, *_ignored: truthy(a)),
    "<": Operator(2, 3, _lt),
    "<=": Operator(2, 3, _le),
    ">": Operator(2, 2, lambda a, b: js_lt(b, a)),
    ">=": Operator(2, 2, lambda a, b: js_le(b, a)),
    "max": Operator(1, None, _max),
    "min": Operator(1, None, _min),
    "+": Operator(1, None, _add),
    "-": Operator(1, None, _subtract),
    "*": Operator(2, None, _multiply),
    "/": Operator(2, 2, _divide),
    "%": Operator(2, 2, _remainder),
    "in": Operator(2, 2, _in),
    "cat": Operator(1, None, _cat),
    "substr": Operator(2, 3, _substr),
    "merge": Operator(1, None, _merge),
}


def _is_index(key: str) -> bool:
    """JavaScript's array index: ASCII digits without a leading zero (isdigit() alone also
    takes "²", which int() refuses, and other scripts' digits, which JavaScript does not)."""
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0")


def lookup(data: Any, path: Any, default: Any = None) -> Any:
    """json-logic-js's ``var``: a dotted path into the data; "" or null is the data itself."""
    if path is None or path == "":
        return data
    for key in to_string(path).split("."):
        if data is None:
            return default
        if isinstance(data, Mapping):
            data = data.get(key, _ABSENT)
        elif isinstance(data, list | tuple) and _is_index(key):
            index = int(key)
            data = data[index] if index < len(data) else _ABSENT
        else:
            data = _ABSENT
        if data is _ABSENT:
            return default
    return data


def _var(data: Any, path: Any = None, default: Any = None, *_ignored: Any) -> Any:
    return lookup(data, path, default)


def missing(data: Any, *keys: Any) -> list[Any]:
    """The keys (or the one list of keys given) whose value is null, absent or ""."""
    names = keys[0] if keys and isinstance(keys[0], list | tuple) else keys
    absent = []
    for key in names:
        value = lookup(data, key)
        if value is None or value == "":
            absent.append(key)
    return absent


def _missing_some(data: Any, need: Any, keys: Any) -> list[Any]:
    keys = keys if isinstance(keys, list | tuple) else [keys]
    absent = missing(data, keys)
    return [] if len(keys) - len(absent) >= to_number(need) else absent


# Operators that read the data as well as their arguments: called with the data first.
DATA_OPERATORS: dict[str, Operator] = {
    "var": Operator(0, None, _var),
    "missing": Operator(0, None, missing),
    "missing_some": Operator(2, 2, _missing_some),
}
