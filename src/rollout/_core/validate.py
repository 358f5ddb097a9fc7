"""Argument checks shared by the public API. Each names the argument and the value it rejects."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

__all__ = [
    "MAX_NAME_LENGTH",
    "FlagName",
    "data_mapping",
    "flag_name",
    "member_name",
    "percentage",
    "rollout_options",
]

MAX_NAME_LENGTH = 255

#: A flag (or group) name as the public API takes it: a str, or an Enum member whose value is a
#: str (``class Flags(StrEnum): CHAT = "chat"``). Checked at run time by :func:`flag_name`.
FlagName = str | Enum


def _has_control_character(text: str) -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def flag_name(name: object, argument: str = "name") -> str:
    """A flag name as ``str``: a ``str``, or an ``Enum`` member whose value is one."""
    if isinstance(name, Enum):
        name = name.value
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str (or a str-valued Enum), got {name!r}")
    # A str-subclass (StrEnum) is normalised so it hashes and prints as the plain text.
    name = str.__str__(name)
    if not name:
        raise ValueError(f"{argument} must not be empty, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{argument} must be at most {MAX_NAME_LENGTH} characters, got {len(name)}: "
            f"{name[:40]!r}..."
        )
    if _has_control_character(name):
        raise ValueError(f"{argument} must not contain control characters, got {name!r}")
    return name


def member_name(value: object, argument: str) -> str:
    """A group name or data key: a non-empty str without control characters."""
    return flag_name(value, argument)


def percentage(value: object, argument: str = "percentage") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{argument} must be a number from 0 to 100, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number) or not 0.0 <= number <= 100.0:
        raise ValueError(f"{argument} must be from 0 to 100, got {value!r}")
    return number


def data_mapping(value: object, argument: str = "data") -> dict[str, Any]:
    """A mapping of str keys to JSON values, checked and copied (so later edits do not leak in)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{argument} must be a mapping of str to JSON values, got {value!r}")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        member_name(key, f"{argument} key")
        try:
            # Round-trip so the stored value is plain JSON (tuples become lists, and so on).
            checked[key] = json.loads(json.dumps(item, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{argument}[{key!r}] must be JSON-serialisable, got {item!r} ({exc})"
            ) from exc
    return checked


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
        return str.__str__(user)
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
    return str.__str__(ident) if isinstance(ident, str) else str(int(ident))


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
