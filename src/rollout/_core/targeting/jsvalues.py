"""JavaScript's value semantics over JSON values, as json-logic-js applies them.

JsonLogic is specified by its JavaScript implementation: truthiness, loose equality (``==``),
relational comparison and string conversion are JavaScript's. Python's differ (``1 == True``,
``"" < 1`` raises, ``str(1.0) == "1.0"``), so every operator goes through these instead.
Values are JSON values as ``json.loads`` gives them; a Python ``bool`` is a boolean, never a
number; lists and tuples are arrays; any other mapping is an object.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from .bounds import MAX_BUILT

__all__ = [
    "ValueTooLargeError",
    "js_le",
    "js_lt",
    "loose_eq",
    "number_to_string",
    "parse_float",
    "strict_eq",
    "to_double",
    "to_number",
    "to_string",
    "truthy",
]

NAN = math.nan
# Exact types (bool is not a number here) for the fast paths of comparisons.
_NUMBERS = frozenset({int, float})
_SCALARS = frozenset({str, int, float, bool})
# One way to match each text (digits, then an optional fraction, then an optional exponent):
# an ambiguous pattern backtracks quadratically on a long run of digits that then fails.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RADIX = {"0x": 16, "0o": 8, "0b": 2}
_RADIX_DIGITS = {16: re.compile(r"[0-9a-fA-F]+"), 8: re.compile(r"[0-7]+"), 2: re.compile(r"[01]+")}
# JavaScript's String.prototype.trim removes these (and line terminators) around a number.
_JS_SPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


class ValueTooLargeError(Exception):
    """A value written out as text would be longer than bounds.MAX_BUILT (an evaluation error)."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def truthy(value: Any) -> bool:
    """json-logic-js's truthiness: JavaScript's, except that an empty array is false."""
    if value is True:
        return True
    if value is None or value is False:
        return False
    kind = type(value)
    if kind is str or kind is list:
        return len(value) > 0
    if isinstance(value, int | float):
        return value != 0 and not math.isnan(value)  # NaN and 0 are false
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    return True


# Integers from -2**53 to 2**53 are exactly JavaScript numbers; beyond, a number is a double.
_EXACT = 2**53


def to_double(number: int) -> float:
    """A JSON integer as the JavaScript number (a double) it is: too large is +-Infinity.

    Python's integers are unbounded: squaring one again and again in a rule would otherwise
    ask for a number of 2**n digits, and one of over 4,300 digits cannot even be written out.
    """
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def number_to_string(number: float) -> str:
    """JavaScript's Number.prototype.toString: ``1.0`` is "1", ``1e21`` is "1e+21"."""
    if isinstance(number, int):
        if -_EXACT <= number <= _EXACT:
            return str(number)
        number = to_double(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == int(number) and abs(number) <= _EXACT:
        return str(int(number))
    text = repr(number)  # the shortest text that reads back as the number, as JavaScript's
    if "e" not in text:
        return text.removesuffix(".0")
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    if -7 < exponent < 21:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def to_string(value: Any) -> str:
    """JavaScript's String(value): what ``cat`` joins and ``in`` searches for."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return number_to_string(value)
    if isinstance(value, list | tuple):
        return _join(value, [MAX_BUILT])
    return "[object Object]"


def _join(items: list[Any] | tuple[Any, ...], room: list[int]) -> str:
    """Array.prototype.join(","), with null elements as "", within ``room`` characters.

    A list can hold the same list twice, and that one twice, ...: small in memory, but
    2**depth leaves as text. Every element costs at least one character of ``room``, so the
    work is bounded whatever the sharing.
    """
    parts = []
    for item in items:
        if isinstance(item, list | tuple):
            text = _join(item, room)
        else:
            text = "" if item is None else to_string(item)
        room[0] -= len(text) + 1
        if room[0] < 0:
            raise ValueTooLargeError(f"a value is too large as text (over {MAX_BUILT} characters)")
        parts.append(text)
    return ",".join(parts)


def _to_primitive(value: Any) -> Any:
    """JavaScript's ToPrimitive: arrays and objects become their String(); scalars stay."""
    return to_string(value) if _kind(value) == "object" else value


def to_number(value: Any) -> float:
    """JavaScript's Number(value): null is 0, "" is 0, "12" is 12, "1a" is NaN."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return to_double(value)
    if value is None:
        return 0.0
    if not isinstance(value, str):
        return to_number(_to_primitive(value)) if isinstance(value, list | tuple) else NAN
    text = value.strip(_JS_SPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if text[0] == "-" else math.inf
    radix = _RADIX.get(text[:2].lower())
    if radix is not None and _RADIX_DIGITS[radix].fullmatch(text[2:]):
        return to_double(int(text[2:], radix))
    return NAN


def parse_float(value: Any) -> float:
    """JavaScript's parseFloat: the longest numeric prefix of String(value), else NaN."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return to_double(value)
    text = to_string(value).lstrip(_JS_SPACE)
    for sign, infinity in (("", math.inf), ("+", math.inf), ("-", -math.inf)):
        if text.startswith(sign + "Infinity"):
            return infinity
    match = _DECIMAL.match(text)
    return float(match.group()) if match else NAN


def strict_eq(a: Any, b: Any) -> bool:
    """JavaScript's ``===``: same type and value; arrays and objects only equal themselves."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "object":
        return a is b
    return bool(a == b)


def loose_eq(a: Any, b: Any) -> bool:
    """JavaScript's ``==`` (the Abstract Equality Comparison), over JSON values."""
    type_a = type(a)
    if type_a is type(b) and type_a in _SCALARS:  # the common case, decided at once
        return bool(a == b)
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a == kind_b:
        return a is b if kind_a == "object" else bool(a == b)
    if kind_a == "null" or kind_b == "null":
        return False
    if kind_a == "boolean":
        return loose_eq(to_number(a), b)
    if kind_b == "boolean":
        return loose_eq(a, to_number(b))
    if kind_a == "number" and kind_b == "string":
        return bool(a == to_number(b))
    if kind_a == "string" and kind_b == "number":
        return bool(to_number(a) == b)
    if kind_a == "object":
        return loose_eq(_to_primitive(a), b)
    return loose_eq(a, _to_primitive(b))


def js_lt(a: Any, b: Any) -> bool:
    """JavaScript's ``a < b``: two strings compare as strings, anything else as numbers."""
    if type(a) in _NUMBERS and type(b) in _NUMBERS:
        return bool(a < b)
    a, b = _to_primitive(a), _to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return a < b
    return to_number(a) < to_number(b)


def js_le(a: Any, b: Any) -> bool:
    """JavaScript's ``a <= b`` (false when either side is NaN)."""
    if type(a) in _NUMBERS and type(b) in _NUMBERS:
        return bool(a <= b)
    a, b = _to_primitive(a), _to_primitive(b)
    if isinstance(a, str) and isinstance(b, str):
        return a <= b
    return to_number(a) <= to_number(b)
