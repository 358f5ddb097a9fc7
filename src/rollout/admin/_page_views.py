"""What the dashboard's templates show of a flag (its JSON, full or summary: rollout._core.shapes,
or the flag page's lighter :func:`page_flag`): a state label and a summary line; and history
events as sentences, each headed by what it did ("on for 20% of users").

Plain functions, so the templates stay free of logic. ``static/common.js`` mirrors
``state_label`` and ``summary`` for updates that arrive after the page was rendered; keep the two
in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._core.feature import Feature
from .._core.keys import DATA, EXCLUDE, EXISTS, GROUP, PERCENTAGE, SEPARATOR, TIME, USER, split_key
from .._core.rules import state
from .._core.shapes import Usage, flag_shape, member_counts
from ._api_members import page_of

if TYPE_CHECKING:
    from .._core.history import HistoryEvent

__all__ = [
    "HistoryLine",
    "description",
    "history_lines",
    "number",
    "page_flag",
    "percent",
    "state_label",
    "summary",
    "when",
]

#: The ids of each list a flag page starts with; the page asks the API for more (a flag with a
#: million users is a page of a few kilobytes, not of megabytes).
FIRST_PAGE = 100


def page_flag(feature: Feature, usage: Usage | None = None) -> dict[str, Any]:
    """The flag's full shape with only the first page of each id list (never sorting them all),
    its real ``counts``, the next pages' cursors (``users_next_cursor``, and the same for
    ``excluded_users``) and which shown users are excluded (``users_excluded``: the exclusion
    wins)."""
    without_lists = Feature(
        feature.name,
        percentage=feature.percentage,
        percentage_of_time=feature.percentage_of_time,
        groups=feature.groups,
        data=feature.data,
    )
    slim = flag_shape(without_lists, usage)
    slim["state"] = state(feature)  # of the whole flag
    slim["counts"] = member_counts(feature)
    for field, ids in (("users", feature.users), ("excluded_users", feature.excluded_users)):
        _total, first, cursor = page_of(ids, limit=FIRST_PAGE)
        slim[field] = first
        slim[f"{field}_next_cursor"] = cursor
    slim["users_excluded"] = [u for u in slim["users"] if u in feature.excluded_users]
    return slim


def percent(value: float) -> str:
    """``20``, ``12.5``, ``0.1``: no trailing ``.0``."""
    return f"{value:g}"


def state_label(flag: Mapping[str, Any]) -> str:
    if flag["state"] == "partial" and flag["percentage"]:
        return f"partial {percent(flag['percentage'])}%"
    return str(flag["state"])


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def summary(flag: Mapping[str, Any]) -> str:
    """One line of who gets the flag: ``20% of users · 2 users · groups admins``."""
    parts = []
    if flag["state"] == "on":
        parts.append("everybody")
    elif flag["percentage"]:
        parts.append(f"{percent(flag['percentage'])}% of users")
    if flag["percentage_of_time"]:
        parts.append(f"{percent(flag['percentage_of_time'])}% of checks")
    counts = flag["counts"]
    if counts["users"]:
        parts.append(_count(counts["users"], "user"))
    if flag.get("groups"):  # the full shape names them; a summary counts them
        parts.append("groups " + ", ".join(flag["groups"]))
    elif counts["groups"]:
        parts.append(_count(counts["groups"], "group"))
    if counts["excluded_users"]:
        parts.append(f"{counts['excluded_users']:,} excluded")
    return " · ".join(parts) if parts else "nobody"


def description(flag: Mapping[str, Any]) -> str:
    """``data["description"]`` when it is a string: teams often keep one there."""
    text = flag["data"].get("description") if "data" in flag else flag["description"]
    return text if isinstance(text, str) else ""


def when(value: str | None) -> str:
    """An ISO 8601 time of the JSON shapes for people (``2026-12-05 16:09 UTC``), or ``never``."""
    if value is None:
        return "never"
    return value[:16].replace("T", " ") + " UTC"


def number(value: int | None) -> str:
    """A count with thousands separators (``1,000,000``); a dash when not known."""
    return "-" if value is None else f"{value:,}"


# History --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    at: str  #: ISO 8601, UTC
    at_text: str  #: the same, for people
    actor: str
    action: str  #: the method that made it (``activate_percentage``)
    title: str  #: what it did, for people (``on for 20% of users``)
    node: str
    reason: str
    changes: list[str]


def history_lines(events: list[HistoryEvent]) -> list[HistoryLine]:
    lines = []
    for event in events:
        data = event.to_dict()
        lines.append(
            HistoryLine(
                at=data["at"],
                at_text=event.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                actor=event.actor or "unknown",
                action=event.action,
                title=action_title(event.action, event.after),
                node=event.node,
                reason=event.reason or "",
                changes=[
                    _change(key, event.before.get(key), event.after.get(key))
                    for key in sorted({*event.before, *event.after})
                ],
            )
        )
    return lines


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
}
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


def _change(key: str, before: Any, after: Any) -> str:
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
