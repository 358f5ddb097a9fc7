"""A register's value as a store keeps it: JSON text in a column (SQLite, PostgreSQL) or a
Redis hash field, written canonically and read back checked.

A store's bytes come from outside this process (another process, a program, a hand, a flipped
bit), so :func:`decode_stored` checks what it reads as the codec checks an export
(rollout._core.register_checks), and names the flag and the key of what it refuses.
"""

from __future__ import annotations

from ..errors import FormatError
from .keys import EXISTS, SEPARATOR, TARGETING_PREFIXES, WATERMARKS
from .lazy import LazyModule
from .validate import text_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Callable
    from typing import Any

    from . import register_checks as _checks
else:
    json = LazyModule("json")  # loaded by the first value encoded or read (lazy.py)
    _checks = LazyModule("rollout._core.register_checks")  # by the first register checked

__all__ = ["decode_stored", "decode_value", "encode_value"]


def encode_value(key: str, value: Any) -> str:
    """One register value as text, for stores that keep values in a text column."""
    if key in WATERMARKS:
        return ""
    encode = _canonical[0] if _canonical else _canonical_encoder()
    return encode(value)


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"))`` as one encoder's ``encode``,
#: made at the first use (json loads lazily): dumps builds an encoder per call, a sixth of
#: encoding a write's history event. (An encoder keeps no state between calls.)
_canonical: list[Callable[[Any], str]] = []


def _canonical_encoder() -> Callable[[Any], str]:
    if not _canonical:
        _canonical.append(json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode)
    return _canonical[0]


def decode_value(key: str, text: str) -> Any:
    """The value of ``encode_value``; ValueError (FormatError) for text that is not one."""
    if key in WATERMARKS:
        return None
    try:
        return json.loads(text)
    except RecursionError:  # valid JSON nested deeper than the parser can take
        raise FormatError(f"stored value of {key!r} is nested too deeply") from None


def decode_stored(name: object, key: object, text: object) -> Any:
    """One register's value as a store keeps it (a text column, a Redis hash field), checked.

    A store's bytes can be damaged (a flipped bit on disk, an edit by hand): a row whose key is
    not a register key, whose text is not JSON, or whose value is not one that key can hold
    raises :class:`FormatError` naming the flag and the key, rather than loading as a smaller or
    different flag set. The flag name is only checked to be text: a stricter naming rule must
    not make a store written before it unreadable.
    """
    if type(name) is str and name and type(key) is str:
        # The common row by far (a user, a group, an exclusion, ``exists``), checked without
        # parsing JSON: it keeps loading 100,000 users as fast as it was unchecked.
        value = _BOOLEANS.get(text) if type(text) is str else None
        if value is not None:
            head, separator, member = key.partition(SEPARATOR)
            if (separator and member and head in _TARGETING_HEADS) or key == EXISTS:
                return value
    return _decode_stored(name, key, text)


_BOOLEANS = {"true": True, "false": False}
_TARGETING_HEADS = frozenset(prefix[: -len(SEPARATOR)] for prefix in TARGETING_PREFIXES)


def _decode_stored(name: object, key: object, text: object) -> Any:
    if not isinstance(name, str) or not name:
        raise FormatError(f"a flag name must be text, got {name!r}")
    where = f"register {key!r} of flag {name!r}"
    if not isinstance(key, str) or not _checks.known_key(key) or not _checks.belongs(name, key):
        raise FormatError(f"{where}: unknown register key")
    problem = text_problem(key)
    if problem is not None:
        raise FormatError(f"{where}: the key {problem}")
    if key in WATERMARKS:
        return None
    if not isinstance(text, str):
        raise FormatError(f"{where}: the value must be JSON text, got {text!r}")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise FormatError(f"{where}: the value is not JSON ({exc}): {text[:80]!r}") from exc
    except RecursionError:  # valid JSON nested deeper than the parser can take
        raise FormatError(f"{where}: the value is nested too deeply") from None
    _checks.check_value(where, key, value)
    return value


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")  # NaN, Infinity: not JSON, which json takes
