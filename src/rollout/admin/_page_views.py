"""What the dashboard's templates show of a flag (its JSON, full or summary: rollout._core.shapes):
a state label and a summary line; and history events as sentences.

Plain functions, so the templates stay free of logic. ``static/common.js`` mirrors
``state_label`` and ``summary`` for updates that arrive after the page was rendered; keep the two
in step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._core.keys import DATA, EXCLUDE, EXISTS, GROUP, PERCENTAGE, SEPARATOR, TIME, USER, split_key

if TYPE_CHECKING:
    from .._core.history import HistoryEvent

__all__ = [
    "HistoryLine",
    "description",
    "history_lines",
    "number",
    "percent",
    "state_label",
    "summary",
    "when",
]


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
    action: str
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
        return f"{prefix.removesuffix(SEPARATOR)}s: {after}"
    if prefix == DATA and member:
        return f"data {member}: {_json(before)} → {_json(after)}"
    if key == EXISTS:
        return "created" if after else "deleted"
    if key in _SCALARS:
        return f"{_SCALARS[key]}: {percent(before or 0.0)}% → {percent(after or 0.0)}%"
    if key in _CLEARED and not after:
        was = before if isinstance(before, str) else _json(before)
        verb = "was" if key == "data" else "were"
        return f"{_CLEARED[key]} cleared ({verb} {was})"
    return f"{key}: {_json(before)} → {_json(after)}"


def _json(value: Any) -> str:
    if value is None:
        return "none"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
