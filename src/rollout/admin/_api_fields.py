"""What the API accepts, declared once: each body field and parameter with its JSON Schema and
the check that enforces exactly that schema.

The route table (rollout.admin._api) lists these per operation; the OpenAPI document is built
from the same objects, so the document and the checks cannot disagree.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._core import validate as _validate
from ._errors import ApiError

__all__ = [
    "DATA",
    "FLAG_QUERY",
    "GROUP",
    "GROUP_PATH",
    "LIMIT",
    "LIST_DEFAULT",
    "LIST_MAX",
    "LIST_PARAMS",
    "NAME_PATH",
    "PERCENTAGE",
    "REASON",
    "REGISTER_KEY",
    "USER",
    "VIEW",
    "Field",
    "Param",
    "active_field",
    "encode_cursor",
    "member_parser",
    "parse_body",
    "users_field",
]

#: A flag name, group name or data key: the library's one naming rule. In a path, a name is
#: one segment, percent-encoded ("/" as %2F): the routes match the raw path (see _routing).
NAME_PATTERN: Final = _validate.NAME_PATTERN
#: Free text (a reason, a register key): no control characters.
TEXT_PATTERN: Final = _validate.TEXT_PATTERN
_MAX = _validate.MAX_NAME_LENGTH

Parse = Callable[[Any], Any]


@dataclass(frozen=True)
class Field:
    """A JSON body field: its schema (for the document) and ``parse`` (raises ApiError)."""

    name: str
    schema: Mapping[str, Any]
    parse: Parse
    description: str = ""
    required: bool = field(default=True)


@dataclass(frozen=True)
class Param:
    """A path or query parameter (always text on the wire)."""

    name: str
    location: str  # "path" or "query"
    schema: Mapping[str, Any]
    parse: Parse
    description: str = ""
    required: bool = field(default=True)


def _invalid(name: str | None, message: str) -> ApiError:
    return ApiError("invalid", message, field=name)


# Names ------------------------------------------------------------------------------------------


def member_parser(name: str) -> Parse:
    """The parse of a name (a group's, a rule's) under the library's one naming rule."""

    def parse(value: Any) -> str:
        try:
            return _validate.member_name(value, name)
        except (TypeError, ValueError) as exc:
            raise _invalid(name, str(exc)) from None

    return parse


_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": _MAX, "pattern": NAME_PATTERN}

NAME_PATH: Final = Param(
    "name",
    "path",
    _NAME_SCHEMA,
    member_parser("name"),
    "The flag's name, percent-encoded (/ as %2F).",
)
GROUP_PATH: Final = Param(
    "group",
    "path",
    _NAME_SCHEMA,
    member_parser("group"),
    "A group name, percent-encoded (/ as %2F).",
)


def _flag_query(value: Any) -> str:
    try:
        return _validate.flag_name(value, "flag")
    except (TypeError, ValueError) as exc:
        raise _invalid("flag", str(exc)) from None


#: A flag name as a query parameter.
FLAG_QUERY: Final = Param(
    "flag",
    "query",
    _NAME_SCHEMA,
    _flag_query,
    "Only this flag's.",
    required=False,
)


def _user(value: Any) -> str:
    if value == "":
        raise _invalid("user", "user must not be empty")
    try:
        return _validate.text(str(value), "user")
    except ValueError as exc:
        raise _invalid("user", str(exc)) from None


def _limit(value: Any) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise _invalid("limit", f"limit must be a whole number from 0, got {text[:40]!r}")
    return int(text)


USER: Final = Param(
    "user",
    "query",
    {"type": "string", "minLength": 1},
    _user,
    "The user id to check for; without it, the check is for no user (on only at 100%).",
    required=False,
)
LIMIT: Final = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
    _limit,
    "At most this many events (newest first); all that are kept without it.",
    required=False,
)

# The flag list's parameters --------------------------------------------------------------------

#: Flags in one page of GET /flags: by default, and at most.
LIST_DEFAULT: Final = 100
LIST_MAX: Final = 1000
#: The longest span, in days, the stale filters take (a hundred years).
MAX_DAYS: Final = 36500


def _whole(name: str, low: int, high: int) -> Parse:
    def parse(value: Any) -> int:
        text = str(value)
        if not (text.isascii() and text.isdigit()) or not low <= int(text[:12]) <= high:
            raise _invalid(
                name, f"{name} must be a whole number from {low} to {high}, got {text[:40]!r}"
            )
        return int(text)

    return parse


def _view(value: Any) -> str:
    if value not in ("full", "summary"):
        raise _invalid("view", f"view must be full or summary, got {str(value)[:40]!r}")
    return str(value)


#: A flag's answer (its read and its writes): ``summary`` answers the list's shape (counts, not
#: members), so a write to a flag with a million users answers a few hundred bytes.
VIEW: Final = Param(
    "view", "query", {"enum": ["full", "summary"]}, _view,
    "The answer's shape: `full` (the default: every listed user) or `summary` (the list's "
    "shape: counts, not members).",
    required=False,
)  # fmt: skip


def encode_cursor(last: str) -> str:
    """The cursor of the page after the one that ended at the flag named ``last``."""
    return last.encode().hex()


# Hex of UTF-8: any text of this form decodes to a position (names compare as strings), so a
# cursor the client made up is a place in the list, never an error or a way in.
_CURSOR_SCHEMA = {"type": "string", "pattern": "^([0-9a-f]{2})+$", "maxLength": 2040}


def _cursor(value: Any) -> str:
    # Opaque to clients: the last name of the previous page, encoded, so a flag created or
    # deleted between two pages moves nothing.
    text = str(value)
    if len(text) > 2040 or not re.fullmatch("([0-9a-f]{2})+", text):
        raise _invalid("cursor", f"cursor is not one this server gave, got {text[:40]!r}")
    return bytes.fromhex(text).decode("utf-8", "surrogateescape")


def _state(value: Any) -> str:
    if value not in ("on", "off", "partial"):
        raise _invalid("state", f"state must be on, off or partial, got {str(value)[:40]!r}")
    return str(value)


def _query(value: Any) -> str:
    if len(str(value)) > 1000:
        raise _invalid("q", f"q must be at most 1000 characters, got {len(str(value))}")
    try:
        return _validate.text(str(value), "q")
    except ValueError as exc:
        raise _invalid("q", str(exc)) from None


_DAYS = {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}

#: GET /flags: its page size, cursor and filters.
LIST_PARAMS: Final = (
    FLAG_QUERY,
    Param(
        "limit", "query", {"type": "integer", "minimum": 1, "maximum": LIST_MAX},
        _whole("limit", 1, LIST_MAX), f"At most this many flags (default {LIST_DEFAULT}).",
        required=False,
    ),
    Param(
        "cursor", "query", _CURSOR_SCHEMA, _cursor,
        "Where to go on: the `next_cursor` of the previous page.", required=False,
    ),
    Param(
        "state", "query", {"enum": ["on", "off", "partial"]}, _state,
        "Only flags in this state.", required=False,
    ),
    Param(
        "q", "query", {"type": "string", "maxLength": 1000}, _query,
        "Only flags whose name contains this text (case-insensitive).", required=False,
    ),
    Param(
        "unchecked_days", "query", _DAYS, _whole("unchecked_days", 0, MAX_DAYS),
        "Only flags not seen checked in this many days, or never (see `last_checked`).",
        required=False,
    ),
    Param(
        "on_days", "query", _DAYS, _whole("on_days", 0, MAX_DAYS),
        "Only flags on for everybody for at least this many days (see `on_since`).",
        required=False,
    ),
)  # fmt: skip

# Body fields ------------------------------------------------------------------------------------


def active_field() -> Field:
    def parse(value: Any) -> bool:
        if not isinstance(value, bool):
            raise _invalid("active", f"active must be true or false, got {value!r}")
        return value

    return Field("active", {"type": "boolean"}, parse, "true: on for everybody; false: off.")


def _percentage(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid("percentage", f"percentage must be a number from 0 to 100, got {value!r}")
    # Compared before float(): a 400-digit integer is valid JSON and would overflow.
    if not 0 <= value <= 100 or (isinstance(value, float) and math.isnan(value)):
        raise _invalid("percentage", f"percentage must be a number from 0 to 100, got {value!r}")
    return float(value)


PERCENTAGE: Final = Field(
    "percentage", {"type": "number", "minimum": 0, "maximum": 100}, _percentage, "0 to 100."
)


def users_field(*, allow_empty: bool) -> Field:
    def parse(value: Any) -> list[str]:
        if not isinstance(value, list):
            raise _invalid("users", f"users must be a list of user ids, got {value!r:.80}")
        if not value and not allow_empty:
            raise _invalid("users", "users must name at least one user")
        ids = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int) or item == "":
                raise _invalid(
                    "users",
                    f"users[{index}] must be a non-empty string or an integer, got {item!r:.80}",
                )
            ids.append(str(item))
        return ids

    schema: dict[str, Any] = {
        "type": "array",
        "items": {"type": ["string", "integer"], "minLength": 1},
    }
    if not allow_empty:
        schema["minItems"] = 1
    return Field("users", schema, parse, 'User ids (strings, or integers: 42 is "42").')


GROUP: Final = Field(
    "group", _NAME_SCHEMA, member_parser("group"), "A group name (`all` is everyone)."
)


#: How deep a data value may nest (the library's limit, checked by data_mapping).
MAX_DATA_DEPTH: Final = _validate.MAX_DEPTH


def _data(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("data", f"data must be a JSON object, got {value!r:.80}")
    if not value:
        raise _invalid("data", "data must have at least one key")
    try:
        return _validate.data_mapping(value, "data")
    except (TypeError, ValueError, RecursionError) as exc:
        raise _invalid("data", str(exc)[:500]) from None


DATA: Final = Field(
    "data",
    {"type": "object", "minProperties": 1, "propertyNames": _NAME_SCHEMA},
    _data,
    f"Keys to set (merged into the flag's data; other keys stay); values nest at most "
    f"{MAX_DATA_DEPTH} levels deep.",
)


#: The longest register key or reason accepted (a register key is ``user:<id>``, ``data:<key>``).
MAX_TEXT: Final = 1000


def _text(name: str, what: str) -> Parse:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise _invalid(
                name, f"{name} must be {what} (1 to {MAX_TEXT} characters), got {value!r:.80}"
            )
        if not re.fullmatch(TEXT_PATTERN, value):
            raise _invalid(name, f"{name} must not contain control characters, got {value!r:.80}")
        try:
            return _validate.text(value, name)
        except ValueError as exc:
            raise _invalid(name, str(exc)) from None

    return parse


_TEXT_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": TEXT_PATTERN}
REGISTER_KEY: Final = Field(
    "key",
    _TEXT_SCHEMA,
    _text("key", "a register key such as user:42"),
    "Only this register (e.g. `user:42`, as listed); every held register of the flag without it.",
    required=False,
)
REASON: Final = Field(
    "reason",
    _TEXT_SCHEMA,
    _text("reason", "text"),
    "Why, recorded in the flag's history.",
    required=False,
)


def parse_body(body: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """Every declared field checked (each required one present), and no other: an ApiError
    names the field."""
    if not isinstance(body, dict):
        raise _invalid_body(f"the body must be a JSON object, got {type(body).__name__}")
    expected = [f.name for f in fields]
    for key, value in body.items():
        # Lone surrogates (JSON's "\\ud800" escapes) anywhere: nothing may store or show them.
        problem = _validate.json_problem({key: value}, max_depth=sys.maxsize)
        if problem is not None:
            shown = key if _validate.text_problem(key) is None else None
            raise _invalid(shown, f"{key!r:.100}: {problem}")
    for key in body:
        if key not in expected:
            raise _invalid(str(key)[:100], f"unknown field {key!r:.100}; expected {expected}")
    parsed: dict[str, Any] = {}
    for declared in fields:
        if declared.name not in body:
            if not declared.required:
                continue
            raise _invalid(declared.name, f"{declared.name} is required")
        parsed[declared.name] = declared.parse(body[declared.name])
    return parsed


def _invalid_body(message: str) -> ApiError:
    return ApiError("invalid", message)


def body_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            f.name: {**f.schema, "description": f.description} if f.description else dict(f.schema)
            for f in fields
        },
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }
