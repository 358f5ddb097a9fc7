"""What the dashboard's templates show of a flag (its JSON, full or summary: rollout._core.shapes,
or the flag page's lighter :func:`page_flag`): a state label and a summary line; and history
events as sentences, each headed by what it did ("on for 20% of users").

Plain functions, so the templates stay free of logic. ``static/common.js`` mirrors
``badge_state``, ``state_label`` and ``summary`` for updates that arrive after the page was
rendered; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .._core.definition_shapes import definition_shape
from .._core.feature import Feature
from .._core.history_words import action_title, event_changes, percent
from .._core.rules import state
from .._core.shapes import Usage, flag_shape, member_counts
from ._api_members import page_of

if TYPE_CHECKING:
    from .._core.history_event import HistoryEvent

__all__ = [
    "HistoryLine",
    "badge_state",
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
    ``excluded_users``), which shown users are excluded (``users_excluded``: the exclusion
    wins) and its flagd ``definition`` (variants, default variant, targeting, state)."""
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
    slim["definition"] = definition_shape(feature)  # variants and targeting (issue 16)
    return slim


class _Defined(NamedTuple):
    names: list[str]
    default: str | None
    targeting: bool
    enabled: bool


def _defined(flag: Mapping[str, Any]) -> _Defined | None:
    """What decides a flag with variants, from any of its shapes; None for an on/off flag.

    The flag page's shape carries it as flagd's ``definition``; the full shape maps variants
    to values, a summary lists their names and says ``has_targeting``.
    """
    definition = flag.get("definition")
    if definition:
        defined = _Defined(
            list(definition["variants"]),
            definition["defaultVariant"],
            definition["targeting"] is not None,
            definition["state"] != "DISABLED",
        )
    else:
        targeting = flag.get("targeting") is not None or bool(flag.get("has_targeting"))
        defined = _Defined(
            list(flag.get("variants") or ()),
            flag.get("default_variant"),
            targeting,
            flag.get("enabled", True) is not False,
        )
    return defined if defined.names else None


def badge_state(flag: Mapping[str, Any]) -> str:
    """What colours a flag's badge: its on/off state, or, for a flag with variants (whose
    answer its rule and default variant decide, not the on/off state), variants/disabled."""
    defined = _defined(flag)
    if defined is not None:
        return "variants" if defined.enabled else "disabled"
    return str(flag["state"])


def state_label(flag: Mapping[str, Any]) -> str:
    if _defined(flag) is not None:
        return badge_state(flag)
    if flag["state"] == "partial" and flag["percentage"]:
        return f"partial {percent(flag['percentage'])}%"
    return str(flag["state"])


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def summary(flag: Mapping[str, Any]) -> str:
    """One line of who gets the flag: ``20% of users · 2 users · groups admins``; for a flag
    with variants, what decides it: ``variants narrow, wide · default narrow · targeting``."""
    defined = _defined(flag)
    if defined is not None:
        names = defined.names
        shown = ", ".join(names[:_NAMES_SHOWN])
        more = f" and {len(names) - _NAMES_SHOWN:,} more" if len(names) > _NAMES_SHOWN else ""
        parts = [f"variants {shown}{more}"]
        if defined.default is not None:
            parts.append(f"default {defined.default}")
        if defined.targeting:
            parts.append("targeting")
        return " · ".join(parts)
    parts = []
    if flag["state"] == "on":
        parts.append("everybody")
    elif flag["percentage"]:
        parts.append(f"{percent(flag['percentage'])}% of users")
    if flag["percentage_of_time"]:
        parts.append(f"{percent(flag['percentage_of_time'])}% of the time")
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


#: How many variant names a summary line shows before "and N more".
_NAMES_SHOWN = 5


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
                changes=event_changes(event.before, event.after),
            )
        )
    return lines
