"""The flag list of the API and the dashboard: summaries (rollout._core.shapes) with what this
process knows of each flag's use, filtered, in name order, a page at a time.

"Last checked" and "checks" come from the process's check sampler (rollout.admin._sampling):
checks counted in its windows (estimated, and only while it runs: ``/metrics`` starts it) and
the checks this process served exactly (the API's ``check``). A serve process sees only its
own checks, not those of the services that use the same store: docs/http-api.md says so.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._core.shapes import Usage, flag_shape, history_usage, summary_shape
from ._api_fields import LIST_DEFAULT, encode_cursor
from ._sampling import sampler_for

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from .._core.feature import Feature

__all__ = ["FlagPage", "ListQuery", "flag_page", "full_flag", "usage", "viewed_flag"]

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class ListQuery:
    """What GET /flags was asked for (checked by the API's parameters)."""

    limit: int = LIST_DEFAULT
    flag: str | None = None  #: only this one
    after: str | None = None  #: the name the previous page ended with (from its cursor)
    state: str | None = None
    q: str | None = None
    unchecked_days: int | None = None
    on_days: int | None = None

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ListQuery:
        return cls(
            limit=values.get("limit", LIST_DEFAULT),
            flag=values.get("flag"),
            after=values.get("cursor"),
            state=values.get("state"),
            q=values.get("q"),
            unchecked_days=values.get("unchecked_days"),
            on_days=values.get("on_days"),
        )


@dataclass(frozen=True)
class FlagPage:
    flags: list[dict[str, Any]]
    next_cursor: str | None
    total: int  #: flags matching the filters, on every page

    def to_dict(self) -> dict[str, Any]:
        return {"flags": self.flags, "next_cursor": self.next_cursor, "total": self.total}


class _Checks:
    """The sampler's numbers, read once per request."""

    def __init__(self, flags: Rollout) -> None:
        sampler = sampler_for(flags)
        self.last = sampler.last_checked()
        self.counted = sampler.windows > 0  # otherwise "checks" is unknown, not 0
        self.totals: dict[str, float] = {}
        for (name, _answer), count in sampler.totals().items():
            self.totals[name] = self.totals.get(name, 0.0) + count

    def usage(self, base: Usage, name: str) -> Usage:
        last = self.last.get(name)
        return Usage(
            changed_at=base.changed_at,
            changed_by=base.changed_by,
            on_since=base.on_since,
            checked_at=None
            if last is None
            else datetime.datetime.fromtimestamp(last, datetime.UTC),
            checks=round(self.totals.get(name, 0.0)) if self.counted else None,
        )


def usage(flags: Rollout, feature: Feature) -> Usage:
    """All this process knows of one flag's use."""
    return _Checks(flags).usage(history_usage(feature, flags.history), feature.name)


def full_flag(flags: Rollout, name: str) -> dict[str, Any]:
    """The full shape of the flag ``name``, with its use."""
    feature = flags.get(name)
    return flag_shape(feature, usage(flags, feature))


def viewed_flag(flags: Rollout, name: str, view: str = "full") -> dict[str, Any]:
    """The flag ``name`` in the shape asked for: ``full`` or ``summary`` (the list's)."""
    if view == "full":
        return full_flag(flags, name)
    feature = flags.get(name)
    return summary_shape(feature, usage(flags, feature))


def flag_page(flags: Rollout, query: ListQuery, now: datetime.datetime) -> FlagPage:
    """One page of the summaries of the flags that match ``query``, in name order."""
    checks = _Checks(flags)
    needle = query.q.casefold() if query.q else None
    matched: list[dict[str, Any]] = []
    if query.flag is None:
        names = flags.features()
    else:
        names = [query.flag] if flags.exists(query.flag) else []
    for name in names:
        if needle is not None and needle not in name.casefold():
            continue
        feature = flags.get(name)
        summary = summary_shape(feature, checks.usage(history_usage(feature, flags.history), name))
        if _keep(summary, query, checks.last.get(name), now):
            matched.append(summary)
    start = 0 if query.after is None else _first_after(matched, query.after)
    page = matched[start : start + query.limit]
    more = start + query.limit < len(matched)
    return FlagPage(page, encode_cursor(page[-1]["flag"]) if more else None, len(matched))


def _keep(
    summary: dict[str, Any], query: ListQuery, last: float | None, now: datetime.datetime
) -> bool:
    if query.state is not None and summary["state"] != query.state:
        return False
    if query.unchecked_days is not None and last is not None:
        checked = datetime.datetime.fromtimestamp(last, datetime.UTC)
        if now - checked < query.unchecked_days * _DAY:
            return False
    if query.on_days is not None:
        on_since = summary["on_since"]
        if on_since is None:  # not on for everybody (or no history of it)
            return False
        became = datetime.datetime.fromisoformat(on_since)
        if now - became < query.on_days * _DAY:
            return False
    return True


def _first_after(summaries: list[dict[str, Any]], name: str) -> int:
    # Names are sorted, so the page goes on after `name` even if that flag was deleted since.
    for index, summary in enumerate(summaries):
        if summary["flag"] > name:
            return index
    return len(summaries)
