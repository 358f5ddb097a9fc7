"""The JSON shapes of a flag and of a check: one definition for the CLI's ``--json`` and the API.

Three shapes, each a plain dict ready for ``json.dumps``:

* :func:`flag_shape` — a flag in full: its state, targeting (every listed user), data and counts;
  ``rollout show --json`` and ``GET /api/v1/flags/{name}`` (and the API's writes) answer it;
* :func:`summary_shape` — a flag for a list: counts instead of member lists, so a flag with a
  million users is a few hundred bytes; ``rollout list --json`` and ``GET /api/v1/flags``
  (a flag with a definition adds its variants' names, default variant, whether it has
  targeting, and whether it is enabled; :func:`flag_shape` has the whole definition);
* :func:`check_shape` — one check's answer: ``rollout check --json`` and ``GET .../check``.

Both flag shapes end with the same :class:`Usage` fields (when the flag last changed and by whom,
since when it has been on for everybody, when it was last checked and how often), each ``None``
where the caller does not know it: the CLI reads no check counts, a serve process only sees its
own (docs/http-api.md, "Last checked").
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .feature import Feature
from .history_event import HistoryEvent
from .ids import user_order
from .keys import EXCLUDE, EXISTS, PERCENTAGE, TIME
from .rules import state

__all__ = [
    "Usage",
    "check_shape",
    "definition_summary",
    "flag_shape",
    "history_usage",
    "iso",
    "member_counts",
    "summary_shape",
    "usage_from_history",
]


@dataclass(frozen=True)
class Usage:
    """What is known of a flag beyond its rules (``None``: not known here)."""

    changed_at: datetime.datetime | None = None
    changed_by: str | None = None
    #: When the flag last became on for everybody (its state is ``on``), from history.
    on_since: datetime.datetime | None = None
    checked_at: datetime.datetime | None = None
    checks: int | None = None


# History keys whose change can make a flag on, or stop it being on, for everybody: the two
# percentages, an exclusion, creation/deletion, and what deactivate and delete clear at once.
_ON_KEYS = frozenset({PERCENTAGE, TIME, EXISTS, "excluded"})


def _touches_on(event: HistoryEvent) -> bool:
    return any(key in _ON_KEYS or key.startswith(EXCLUDE) for key in {*event.before, *event.after})


def usage_from_history(feature: Feature, events: Iterable[HistoryEvent]) -> Usage:
    """Last change (and its actor) and, for a flag on for everybody, since when, from ``events``
    (newest first, as ``Rollout.history`` gives them).

    ``on_since`` is the newest change that could have turned the flag on (a percentage, an
    exclusion, creation): it may be later than the moment it really became on (an exclusion
    added and removed), never earlier, so "on for N days" never names a flag that changed
    within N days. Only the kept history counts (``history_limit`` events per flag): past it,
    the oldest kept event stands for the moment.
    """
    changed: HistoryEvent | None = None
    on_since: datetime.datetime | None = None
    on = state(feature) == "on"
    for event in events:
        if changed is None:
            changed = event
        if not on:
            break
        # Until a change that could have turned it on is found, it has been on at least since
        # the oldest event looked at (all the kept history, at worst).
        on_since = event.at
        if _touches_on(event):
            break
    if changed is None:
        return Usage()
    return Usage(changed_at=changed.at, changed_by=changed.actor, on_since=on_since)


def history_usage(
    feature: Feature, history: Callable[[str, int | None], Iterable[HistoryEvent]]
) -> Usage:
    """:func:`usage_from_history` of what ``history(name, limit)`` (``Rollout.history``) gives:
    the newest event alone unless the flag is on for everybody (then all, to find since when)."""
    return usage_from_history(feature, history(feature.name, None if state(feature) == "on" else 1))


def iso(moment: datetime.datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and ``Z``, as history events are written; or None."""
    if moment is None:
        return None
    text = moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def member_counts(feature: Feature) -> dict[str, int]:
    """How many users, excluded users and groups the flag lists (every shape carries these)."""
    return {
        "users": len(feature.users),
        "excluded_users": len(feature.excluded_users),
        "groups": len(feature.groups),
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "last_changed": iso(usage.changed_at),
        "last_changed_by": usage.changed_by,
        "on_since": iso(usage.on_since),
        "last_checked": iso(usage.checked_at),
        "checks": usage.checks,
    }


def flag_shape(feature: Feature, usage: Usage | None = None) -> dict[str, Any]:
    """A flag in full (lists sorted, so equal flags give equal output; ids in the order a person
    reads them everywhere else, :func:`~rollout._core.ids.user_order`: 7 before 42)."""
    whole = feature.to_dict()
    del whole["name"]
    for key in ("users", "excluded_users"):
        whole[key] = sorted(whole[key], key=user_order)
    return {
        "flag": feature.name,
        "state": state(feature),
        **whole,
        "counts": member_counts(feature),
        **_usage(usage or Usage()),
    }


def summary_shape(feature: Feature, usage: Usage | None = None) -> dict[str, Any]:
    """A flag for a list: no member lists, only their counts; the data's keys, not its values
    (but its ``description`` when that is a string, which lists show)."""
    data = feature.data
    description = data.get("description")
    return {
        "flag": feature.name,
        "state": state(feature),
        "percentage": feature.percentage,
        "percentage_of_time": feature.percentage_of_time,
        "counts": member_counts(feature),
        "data_keys": sorted(data),
        "description": description if isinstance(description, str) else None,
        **definition_summary(feature),
        **_usage(usage or Usage()),
    }


def definition_summary(feature: Feature) -> dict[str, Any]:
    """A flag with a definition in a list: its variants' names, default variant, whether it has
    targeting and whether it is enabled (nothing for an on/off flag, whose shape is unchanged)."""
    if not feature.has_definition:
        return {}
    return {
        "variants": list(feature.variants),
        "default_variant": feature.default_variant,
        "has_targeting": feature.targeting is not None,
        "enabled": feature.enabled,
    }


def check_shape(name: str, user: str | None, active: bool, feature: Feature) -> dict[str, Any]:
    """One check's answer, with the flag's ``state`` so that ``off`` for one user of a
    ``partial`` flag reads as what it is."""
    return {"flag": name, "user": user, "active": active, "state": state(feature)}
