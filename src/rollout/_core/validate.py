"""Argument checks shared by the public API. Each names the argument and the value it rejects."""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Mapping

from .lazy import LazyModule

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Callable, Iterable
    from enum import Enum
    from typing import Any, TypeAlias
else:
    json = LazyModule("json")  # loaded by the first data value checked or encoded (lazy.py)

__all__ = [
    "MAX_DEPTH",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "TEXT_PATTERN",
    "FlagName",
    "data_mapping",
    "flag_name",
    "json_problem",
    "member_name",
    "name_problem",
    "percentage",
    "rollout_options",
    "text",
    "text_problem",
]

MAX_NAME_LENGTH = 255

#: How deep a data value may nest: lists and objects inside one another, the value itself
#: counting as the first level. Deeper values would make every later read, copy and encoding
#: of the flag recurse that deep (Python's JSON codec fails at about a thousand levels).
MAX_DEPTH = 32

#: A flag (or group) name as the public API takes it: a str, or an Enum member whose value is a
#: str (``class Flags(StrEnum): CHAT = "chat"``). Checked at run time by :func:`flag_name`.
FlagName: TypeAlias = "str | Enum"

_CONTROL = r"\u0000-\u001f\u007f-\u009f"
#: The whitespace str.strip() removes, less the control characters (refused anyway): spelled
#: out so NAME_PATTERN means the same in Python and in JSON Schema (ECMA-262), whose \s differ.
_SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: The naming rule (:func:`name_problem`) as a regular expression, for the OpenAPI document;
#: a length of 1 to MAX_NAME_LENGTH and valid Unicode are checked besides.
NAME_PATTERN = rf"^(?!\.\.?$)(?![{_SPACE}])(?![\s\S]*[{_SPACE}]$)[^{_CONTROL}]+$"
#: Free text (a reason, a register key): no control characters.
TEXT_PATTERN = rf"^[^{_CONTROL}]+$"

#: Names a URL path cannot carry: every client (browsers, curl, fetch) collapses a path segment
#: that is ``.`` or ``..`` (``%2E`` included) before sending it.
_DOT_SEGMENTS = frozenset({".", ".."})


#: C0 controls, DEL and C1 controls.
_CONTROL_CHARACTERS = frozenset(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0)]))


def _has_control_character(text: str) -> bool:
    # Both tests run in C (a generator over the characters was a sixth of the HTTP check's time
    # in the app, asked three times a request), and neither loads re at import. A printable text
    # has no control character; the others (a tab, a line break...) are looked through.
    return not text.isprintable() and not _CONTROL_CHARACTERS.isdisjoint(text)


def text_problem(value: str) -> str | None:
    """What makes ``value`` not a sequence of Unicode characters (a lone surrogate), or None.

    Python strings may hold lone surrogates (``"\\ud800"`` from a JSON escape, or undecodable
    bytes of a command line through ``surrogateescape``); no UTF-8 encoder takes them, so one
    stored would break every later read that encodes it.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # What makes one: a JSON "\\ud800" escape (half of a UTF-16 pair), or bytes that were
        # not UTF-8 (a command line, a file name) decoded with surrogateescape.
        return (
            f"holds a lone surrogate ({value[exc.start]!r} at position {exc.start}): not Unicode "
            "text (half of a UTF-16 pair, or bytes that were not UTF-8)"
        )
    return None


def text(value: str, argument: str) -> str:
    """``value`` if it is valid Unicode text; ValueError naming ``argument`` otherwise."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"{argument} {problem}, got {value!r:.200}")
    return value


def name_problem(name: str) -> str | None:
    """What the naming rule refuses in ``name`` (a flag name, group name or data key), or None.

    The one rule for names, wherever they come from (code, the CLI, the API, the dashboard, a
    store or a peer): 1 to 255 characters of Unicode text, no control characters, no leading
    or trailing whitespace (a name that prints like another is a different flag), and not
    ``.`` or ``..`` (no URL can name them). Anything else is allowed, ``/`` included.
    """
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(name)}"
    if _has_control_character(name):
        return "must not contain control characters"
    problem = text_problem(name)
    if problem is not None:
        return problem
    if name != name.strip():
        return "must not begin or end with whitespace"
    if name in _DOT_SEGMENTS:
        return "must not be '.' or '..'"
    return None


def flag_name(name: object, argument: str = "name") -> str:
    """A flag name as ``str``: a ``str``, or an ``Enum`` member whose value is one."""
    # An Enum member exists only once enum was imported; so not loaded here just to ask.
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(name, enum.Enum):
        name = name.value
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str (or a str-valued Enum), got {name!r}")
    # A str-subclass (StrEnum) is normalised so it hashes and prints as the plain text.
    name = str.__str__(name)
    problem = name_problem(name)
    if problem is not None:
        if len(name) > MAX_NAME_LENGTH:  # the message gives the length; the start is enough
            raise ValueError(f"{argument} {problem}: {name[:40]!r}...")
        raise ValueError(f"{argument} {problem}, got {name!r}")
    return name


def member_name(value: object, argument: str) -> str:
    """A group name or data key: the same rule as a flag name (:func:`name_problem`)."""
    return flag_name(value, argument)


def json_problem(value: object, max_depth: int = MAX_DEPTH) -> str | None:
    """What is wrong with a JSON value, or None: lists and objects nested more than
    ``max_depth`` deep (the value itself is the first level), or a string (a value or an
    object's key) that is not Unicode text.

    Iterative, so a value nested far deeper than Python's recursion limit (or a list that
    contains itself) is measured, not crashed on.
    """
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else f"a string {problem}: {value!r:.80}"
    level: list[object] = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    # Runs on every register a peer sends and every event written: an ASCII string (nearly
    # all of them) is passed over without a call, and the types are a tuple, not a union
    # (which isinstance takes apart on every call).
    while level:
        depth += 1
        if depth > max_depth:
            return f"nests more than {max_depth} levels deep"
        deeper: list[object] = []
        for container in level:
            if isinstance(container, dict):
                for key in container:
                    if (
                        isinstance(key, str)
                        and not key.isascii()
                        and (problem := text_problem(key)) is not None
                    ):
                        return f"a key {problem}: {key!r:.80}"
                children: Iterable[object] = container.values()
            else:
                assert isinstance(container, list | tuple)  # only containers are queued
                children = container
            for child in children:
                if isinstance(child, str):
                    if not child.isascii() and (problem := text_problem(child)) is not None:
                        return f"a string {problem}: {child!r:.80}"
                elif isinstance(child, _CONTAINERS):
                    deeper.append(child)
        level = deeper
    return None


_CONTAINERS = (dict, list, tuple)


def percentage(value: object, argument: str = "percentage") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{argument} must be a number from 0 to 100, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number) or not 0.0 <= number <= 100.0:
        raise ValueError(f"{argument} must be a number from 0 to 100, got {value!r}")
    return number


def data_mapping(value: object, argument: str = "data") -> dict[str, Any]:
    """A mapping of str keys to JSON values, checked and copied (so later edits do not leak in).

    Values nest at most :data:`MAX_DEPTH` levels and hold only Unicode text (keys too).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{argument} must be a mapping of str to JSON values, got {value!r}")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        member_name(key, f"{argument} key")
        where = f"{argument}[{key!r}]"
        # Measured before json.dumps, which recurses and would fail far down a deep value.
        problem = json_problem(item)
        if problem is not None and "nests" in problem:
            raise ValueError(f"{where} {problem}")
        try:
            # Round-trip so the stored value is plain JSON (tuples become lists, and so on).
            checked[key] = json.loads(json.dumps(item, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(
                f"{where} must be JSON-serialisable, got {item!r:.200} ({exc})"
            ) from exc
        # Again on the plain copy: keys made text by the round trip (and any surrogate) count.
        problem = json_problem(checked[key])
        if problem is not None:
            raise ValueError(f"{where} must be JSON text: {problem}")
    return checked


def id_user_by_argument(
    id_user_by: str | Callable[[Any], object],
) -> str | Callable[[Any], object]:
    """``id_user_by`` as the Rollout keeps it: a str subclass becomes a plain str.

    An attribute name is written into the source of the compiled checks (``user.id``), after
    tests of its text; a subclass could answer those tests, or ``repr``, with anything, and so
    put code of its choice in that source. A plain copy has only the text.
    """
    if isinstance(id_user_by, str):
        return str.__str__(id_user_by)
    return id_user_by


def id_getter(id_user_by: str | Callable[[Any], object]) -> Callable[[Any], object]:
    if callable(id_user_by):
        return id_user_by
    if isinstance(id_user_by, str) and id_user_by.isidentifier():
        return operator.attrgetter(id_user_by)
    raise TypeError(f"id_user_by must be an attribute name or a callable, got {id_user_by!r}")


def user_id(user: object, get_id: Callable[[Any], object], argument: str = "user") -> str:
    """The user's id as a str: ``42`` and ``"42"`` are the same user."""
    if user is None or isinstance(user, bool):
        raise TypeError(f"{argument} must be a str or int id or an object with an id, got {user!r}")
    if isinstance(user, str):
        if not user:
            raise ValueError(f"{argument} id must not be empty, got {user!r}")
        return text(str.__str__(user), f"{argument} id")
    if isinstance(user, int):
        return str(int(user))
    try:
        ident = get_id(user)
    except AttributeError as exc:
        raise TypeError(f"{argument} has no id ({exc}): {user!r}") from exc
    if ident is None or isinstance(ident, bool) or not isinstance(ident, str | int):
        raise TypeError(f"{argument} id must be a str or int, got {ident!r} from {user!r}")
    if ident == "":
        raise ValueError(f"{argument} id must not be empty, got {ident!r} from {user!r}")
    return text(str.__str__(ident), f"{argument} id") if isinstance(ident, str) else str(int(ident))


def rollout_options(
    randomize_percentage: object, max_offset: object, history_limit: object, node_name: object
) -> None:
    """Check the ``Rollout`` constructor's plain options (the others are checked where used)."""
    if not (
        randomize_percentage is False
        or randomize_percentage is True
        or randomize_percentage == "ruby"
    ):
        raise ValueError(
            f"randomize_percentage must be False, True or 'ruby', got {randomize_percentage!r}"
        )
    if isinstance(max_offset, bool) or not isinstance(max_offset, int | float) or max_offset <= 0:
        raise ValueError(f"max_offset must be a positive number of seconds, got {max_offset!r}")
    if isinstance(history_limit, bool) or not isinstance(history_limit, int) or history_limit < 0:
        raise ValueError(f"history_limit must be an int >= 0, got {history_limit!r}")
    if node_name is not None and (not isinstance(node_name, str) or not node_name):
        raise ValueError(f"node_name must be a non-empty str or None, got {node_name!r}")
    if isinstance(node_name, str):
        text(node_name, "node_name")
