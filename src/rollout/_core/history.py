"""The history of a flag (the audit log): who changed what, when and where.

Every write adds one event to each flag it touches, as a register of that flag under the key
``history:<timestamp>``, written with the write's own timestamp. Events are therefore stored,
replicated and merged by the same machinery as every other register, and an event can never be
separated from the change it describes.

History is bounded: a replica keeps the newest ``limit`` events of a flag (by timestamp). Keeping
"the newest N of the union" is itself a CRDT merge (commutative, associative, idempotent), so
replicas that see events in any order keep the same ones. Events are never hidden by
``deactivate`` or ``delete``: after a delete, the history still says who deleted the flag.
"""

from __future__ import annotations

from contextvars import ContextVar

from .keys import (
    DATA,
    DATA_RESET,
    DEFAULT_VARIANT,
    DEFINITION_RESET,
    DISABLED,
    EXCLUDE,
    EXISTS,
    GROUP,
    MEMBER_PREFIXES,
    PERCENTAGE,
    RESET,
    RULE,
    TARGETING_RULE,
    TIME,
    USER,
    VARIANT,
    is_definition,
    split_key,
)
from .lazy import LazyModule
from .validate import MAX_DEPTH, json_problem, text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    import json
    from collections.abc import Mapping
    from typing import Any, Protocol
else:
    json = LazyModule("json")  # loaded by the first data value checked or encoded (lazy.py)

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "current_context",
    "write_context",
]

DEFAULT_HISTORY_LIMIT = 100

#: At most this many member keys (users, exclusions, groups, data) are named one by one in an
#: event; a bigger write (10,000 users pasted at once) is summarised by counts.
MAX_NAMED_CHANGES = 20


def check_event_value(value: Any) -> str | None:
    """What is wrong with a history register's value from the network, or None."""
    if not isinstance(value, dict):
        return "must be an object"
    if not isinstance(value.get("action"), str):
        return "needs an 'action' string"
    for part in ("before", "after"):
        if not isinstance(value.get(part, {}), dict):
            return f"'{part}' must be an object"
    for part in ("node", "actor", "reason"):
        if value.get(part) is not None and not isinstance(value.get(part), str):
            return f"'{part}' must be a string or null"
    # An event holds a write's before/after values (data values, or all data when cleared).
    return json_problem(value, MAX_DEPTH + 3)


# Who is writing ------------------------------------------------------------------------------

_context: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "rollout_write_context", default=(None, None)
)


def current_context() -> tuple[str | None, str | None]:
    """``(actor, reason)`` for writes made here (this thread or asyncio task)."""
    return _context.get()


def write_context(user: str | None, reason: str | None) -> contextlib.AbstractContextManager[None]:
    for argument, value in (("user", user), ("reason", reason)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{argument} must be a str or None, got {value!r}")
        if value is not None:
            text(value, argument)  # recorded in history, which must stay encodable
    return _WriteContext(user, reason)


class _WriteContext:
    """The context manager of :func:`write_context` (a class: contextlib is not loaded here)."""

    __slots__ = ("_reason", "_token", "_user")

    def __init__(self, user: str | None, reason: str | None) -> None:
        self._user = user
        self._reason = reason

    def __enter__(self) -> None:
        outer_user, outer_reason = _context.get()
        self._token = _context.set((self._user or outer_user, self._reason or outer_reason))

    def __exit__(self, *exc_info: object) -> None:
        _context.reset(self._token)


# What a write changes --------------------------------------------------------------------------


def describe_change(
    view: FlagView | None, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(before, after)`` of a write's register values against the flag's visible view.

    Only what the write changes: a user added who was listed already, a group removed that was
    never there, a percentage set to what it is, are left out, so both are empty for a write
    that changes nothing visible (the caller then records no event). Cheap whatever the flag's
    size: members are looked up one by one, never copied.
    """
    if len(values) == 1 and view is not None and view.exists:
        one = _one_member(view, values)
        if one is not None:
            return one
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    exists = view is not None and view.exists
    if values.get(EXISTS) is False:  # delete
        if exists:
            before[EXISTS], after[EXISTS] = True, False
    elif not exists and not (values and all(key.startswith(RULE) for key in values)):
        # (A named rule's write never creates a flag: rollout._core.keys.RULES_ENTITY.)
        before[EXISTS], after[EXISTS] = False, True
    _definition_changes(view, values, before, after)
    if RESET in values and view is not None:  # deactivate, delete: targeting cleared
        _cleared(before, after, PERCENTAGE, view.percentage, 0.0)
        _cleared(before, after, TIME, view.time_percentage, 0.0)
        for name, members in (("users", view.users), ("excluded", view.excluded)):
            _cleared(before, after, name, _summary(members), [])
        _cleared(before, after, "groups", sorted(view.groups), [])
    keys = [k for k in values if k.startswith(MEMBER_PREFIXES)]
    cleared = DATA_RESET in values and view is not None and bool(view.data)
    if cleared and view is not None:
        new_data = {k.removeprefix(DATA): v for k, v in values.items() if k.startswith(DATA)}
        if _same(dict(view.data), new_data):  # replace_feature_data with the data it has
            cleared = False
            keys = [k for k in keys if not k.startswith(DATA)]
        else:
            before["data"], after["data"] = dict(view.data), {}
    for key in (PERCENTAGE, TIME):
        if key in values:
            current = 0.0 if view is None else getattr(view, _SCALAR[key])
            if current != values[key]:
                before[key], after[key] = current, values[key]
    was = {key: _member(view, key) for key in keys}
    # After the watermark of replace_feature_data, every data key it sets is a change.
    changed = [
        key
        for key in keys
        if (cleared and key.startswith(DATA)) or not _same(was[key], values[key])
    ]
    if len(changed) > MAX_NAMED_CHANGES:
        _summarise_members(values, keys, set(changed), before, after)
    else:
        for key in changed:
            before[key], after[key] = (None if was[key] is _ABSENT else was[key]), values[key]
    return before, after


_SCALAR = {PERCENTAGE: "percentage", TIME: "time_percentage"}

#: The member prefixes whose value is listed or not, and the view's set of each.
_MEMBER_SETS = ((USER, "users"), (EXCLUDE, "excluded"), (GROUP, "groups"))


def _one_member(
    view: FlagView, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """What :func:`describe_change` answers for a write of one user, exclusion or group to an
    existing flag (most writes: ``activate_user``), found without its general walk; None for
    any other write."""
    ((key, value),) = values.items()
    if type(value) is not bool:
        return None
    for prefix, members in _MEMBER_SETS:
        if key.startswith(prefix):
            was = key[len(prefix) :] in getattr(view, members)
            return ({key: was}, {key: value}) if was is not value else ({}, {})
    return None


def _definition_changes(
    view: FlagView | None, values: Mapping[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """The definition registers (and named rules) a write changes, key by key: a whole new
    definition (``definition_reset``) also clears every variant and setting it does not give."""
    written = {k: v for k, v in values.items() if is_definition(k) or k.startswith(RULE)}
    if not written and DEFINITION_RESET not in values:
        return
    old: dict[str, Any] = {DEFAULT_VARIANT: None, TARGETING_RULE: None, DISABLED: False}
    if view is not None:
        old.update({VARIANT + name: value for name, value in view.variants.items()})
        old.update({RULE + name: value for name, value in view.rules.items()})
        old.update(
            {
                DEFAULT_VARIANT: view.default_variant,
                TARGETING_RULE: view.targeting,
                DISABLED: view.disabled,
            }
        )
    new = dict(old)
    if DEFINITION_RESET in values:
        new = {k: None if k.startswith(VARIANT) else v for k, v in old.items()}
        new.update({DEFAULT_VARIANT: None, TARGETING_RULE: None, DISABLED: False})
    new.update(written)
    for key in sorted({*old, *new}):
        was, now = old.get(key), new.get(key)
        if not _same(was, now):
            before[key], after[key] = was, now


def _cleared(before: dict[str, Any], after: dict[str, Any], key: str, was: Any, now: Any) -> None:
    if was:
        before[key], after[key] = was, now


def _summary(members: set[str]) -> list[str] | str:
    if len(members) <= MAX_NAMED_CHANGES:
        return sorted(members)
    return f"{len(members)} ids"


def _split_member(key: str) -> tuple[str, str]:
    split = split_key(key)
    assert split is not None, key  # only keys with a member prefix get here
    return split


def _member(view: FlagView | None, key: str) -> Any:
    """The member's visible value: listed or not (users, exclusions, groups), a data value or
    ``_ABSENT`` (a data key set to null is there)."""
    prefix, name = _split_member(key)
    if prefix == DATA:
        return _ABSENT if view is None else view.data.get(name, _ABSENT)
    if view is None:
        return None  # shown as "-": the flag was never written here
    members = {USER: view.users, EXCLUDE: view.excluded, GROUP: view.groups}[prefix]
    return name in members


#: A data key the flag does not have (its before is recorded as null).
_ABSENT: Any = object()


def _same(was: Any, now: Any) -> bool:
    # Not ==: 1 == 1.0 == True in Python, and those are three different JSON data values.
    if type(was) is not type(now):
        return False
    return bool(was == now) if isinstance(was, bool | str | None) else _json(was) == _json(now)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _summarise_members(
    values: Mapping[str, Any],
    members: list[str],
    changed: set[str],
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    counts: dict[str, list[int]] = {}  # prefix -> [added, removed, unchanged]
    for key in members:
        now = values[key]
        slot = 2 if key not in changed else (0 if now not in (False, None) else 1)
        counts.setdefault(_split_member(key)[0], [0, 0, 0])[slot] += 1
    for prefix, (added, removed, unchanged) in counts.items():
        if added or removed:
            # "user:*": the prefix's key with a star for a member, read back by the dashboard.
            before[f"{prefix}*"] = f"{added + removed + unchanged} named"
            after[f"{prefix}*"] = f"+{added} -{removed} ({unchanged} unchanged)"


if TYPE_CHECKING:  # a type only: typing is not loaded at run time

    class FlagView(Protocol):
        """The visible state :func:`describe_change` reads (rollout._core.state.FlagState has
        it)."""

        exists: bool
        percentage: float
        time_percentage: float
        users: set[str]
        excluded: set[str]
        groups: set[str]
        data: dict[str, Any]
        variants: dict[str, Any]
        default_variant: str | None
        targeting: Any
        disabled: bool
        rules: dict[str, Any]
