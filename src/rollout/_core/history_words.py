"""History events in words, the same on every surface that shows them to people (the dashboard's
history, ``rollout history``'s table): ``on for 20% of users``, ``added user 42``,
``percentage of users: 0% → 20%``, ``created``. The JSON (``flags.history``, the API, ``--json``)
keeps the register keys (``user:42``) for programs."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .ids import user_order
from .keys import (
    DATA,
    DEFAULT_VARIANT,
    DISABLED,
    EXCLUDE,
    EXISTS,
    GROUP,
    PERCENTAGE,
    RULE,
    SEPARATOR,
    TARGETING_RULE,
    TIME,
    USER,
    VARIANT,
    split_key,
)

__all__ = ["action_title", "change_words", "event_changes", "percent"]


def percent(value: float) -> str:
    """``20``, ``12.5``, ``0.1``: no trailing ``.0``."""
    return f"{value:g}"


_MEMBERS = {
    USER: ("added user", "removed user"),
    EXCLUDE: ("excluded user", "no longer excluded:"),
    GROUP: ("added group", "removed group"),
}
_CLEARED = {"users": "users", "excluded": "excluded users", "groups": "groups", "data": "data"}
_SCALARS = {PERCENTAGE: "percentage of users", TIME: "percentage of time"}


_TITLES = {
    "activate": "on for everybody",
    "deactivate": "turned off (targeting cleared)",
    "delete": "deleted",
    "set_users": "set the users",
    "set_feature_data": "changed data",
    "replace_feature_data": "replaced data",
    "clear_feature_data": "cleared data",
    "deactivate_percentage": "percentage of users cleared",
    "deactivate_percentage_of_time": "percentage of time cleared",
    "quarantine_accept": "accepted quarantined values",
    "quarantine_drop": "dropped quarantined values",
    "define_flag": "defined variants and targeting",
    "set_variant": "changed a variant",
    "remove_variant": "removed a variant",
    "set_default_variant": "changed the default variant",
    "set_targeting": "changed the targeting rule",
    "enable_flag": "enabled (flagd state)",
    "disable_flag": "disabled (flagd state)",
    "define_rule": "defined a rule",
    "remove_rule": "removed a rule",
    "load_flagd": "loaded from a flagd file",
}
#: The definition registers that are a name alone, as people read them.
_DEFINITION = {DEFAULT_VARIANT: "default variant", TARGETING_RULE: "targeting rule"}
#: Actions on members: (verb, the register prefix they write).
_MEMBER_ACTIONS = {
    "activate_user": ("added user", USER),
    "activate_users": ("added user", USER),
    "deactivate_user": ("removed user", USER),
    "deactivate_users": ("removed user", USER),
    "exclude_user": ("excluded user", EXCLUDE),
    "exclude_users": ("excluded user", EXCLUDE),
    "include_user": ("no longer excluded: user", EXCLUDE),
    "include_users": ("no longer excluded: user", EXCLUDE),
    "activate_group": ("on for group", GROUP),
    "deactivate_group": ("off for group", GROUP),
}


def action_title(action: str, after: Mapping[str, Any]) -> str:
    """What an event did, in words: ``on for 20% of users``, ``added user 42``,
    ``added 3 users``; an action not foreseen here reads as its name with spaces."""
    if action == "activate_percentage" and PERCENTAGE in after:
        return f"on for {percent(after[PERCENTAGE] or 0.0)}% of users"
    if action == "activate_percentage_of_time" and TIME in after:
        return f"on for {percent(after[TIME] or 0.0)}% of the time"
    if action in _MEMBER_ACTIONS:
        verb, prefix = _MEMBER_ACTIONS[action]
        members = [k[len(prefix) :] for k in after if k.startswith(prefix) and k != prefix + "*"]
        if len(members) == 1:
            return f"{verb} {members[0]}"  # "added user 42", "on for group admins"
        many = len(members)
        # A big write is summarised by counts, "+100000 -0 (0 unchanged)": see history.py.
        counted = re.match(r"\+(\d+) -(\d+)", str(after.get(prefix + "*", "")))
        if counted:
            many = int(counted[2 if verb.startswith(("removed", "no longer")) else 1])
        return f"{verb.removesuffix(' user')} {many:,} users"
    return _TITLES.get(action, action.replace("_", " "))


def _thousands(text: str) -> str:
    """Counts written by the history (``+100000 -0``) with thousands separated."""
    return re.sub(r"\d{4,}", lambda m: f"{int(m[0]):,}", text)


def change_words(key: str, before: Any, after: Any) -> str:
    """One change as a sentence; anything unforeseen falls back to ``key: before → after``.

    ``key`` is a register key (``user:42``), a prefix with ``*`` for the members of a big write
    summarised by counts (``user:*``), or what deactivate or delete cleared (``users``): see
    rollout._core.history.describe_change.
    """
    prefix, member = split_key(key) or (key, "")
    if prefix in _MEMBERS and member != "*" and isinstance(after, bool):
        added, removed = _MEMBERS[prefix]
        return f"{added if after else removed} {member}"
    if prefix in _MEMBERS and member == "*":  # a big write, summarised by counts
        return f"{prefix.removesuffix(SEPARATOR)}s: {_thousands(str(after))}"
    if prefix == DATA and member:
        return f"data {member}: {_json(before)} → {_json(after)}"
    if prefix in (VARIANT, RULE) and member:
        kind = prefix.removesuffix(SEPARATOR)
        if after is None:
            return f"removed {kind} {member} (was {_json(before)})"
        if before is None:
            return f"added {kind} {member}: {_json(after)}"
        return f"changed {kind} {member}: {_json(before)} → {_json(after)}"
    if key in _DEFINITION:
        return f"{_DEFINITION[key]}: {_json(before)} → {_json(after)}"
    if key == DISABLED and isinstance(after, bool):
        return "disabled" if after else "enabled"
    if key == EXISTS:
        return "created" if after else "deleted"
    if key in _SCALARS:
        return f"{_SCALARS[key]}: {percent(before or 0.0)}% → {percent(after or 0.0)}%"
    if key in _CLEARED and not after:
        was = _thousands(before) if isinstance(before, str) else _json(before)
        verb = "was" if key == "data" else "were"
        return f"{_CLEARED[key]} cleared ({verb} {was})"
    return f"{key}: {_json(before)} → {_json(after)}"


def _json(value: Any) -> str:
    if value is None:
        return "none"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def event_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Every change of one event, as sentences: by kind, then ids as people read them (7 before
    42: :func:`~rollout._core.ids.user_order`)."""
    keys = sorted({*before, *after}, key=_key_order)
    return [change_words(key, before.get(key), after.get(key)) for key in keys]


def _key_order(key: str) -> tuple[str, tuple[int, int, str]]:
    prefix, member = split_key(key) or (key, "")
    return prefix, user_order(member)
