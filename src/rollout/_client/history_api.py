"""The history half of the public API: reading a flag's events, naming who writes.

A mixin of :class:`rollout.Rollout`; the events themselves are made in ``Rollout._write`` (one
per flag a write touches) from :meth:`HistoryAPI._event`. See rollout._history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._core import validate as _validate
from .._core.history import HistoryEvent, write_context

if TYPE_CHECKING:
    from .replica import Replica
    from .writes import FlagName

__all__ = ["HistoryAPI"]


class HistoryAPI:
    """History methods of :class:`rollout.Rollout`."""

    _replica: Replica
    #: Where this process's changes are recorded as made (``Rollout(node_name=...)``).
    node_name: str

    def _event(
        self,
        name: str,
        values: Mapping[str, Any],
        action: str,
        actor: str | None,
        reason: str | None,
    ) -> dict[str, Any]:
        before, after = self._replica.describe(name, values)
        event: dict[str, Any] = {
            "action": action,
            "before": before,
            "after": after,
            "node": self.node_name,
        }
        if actor is not None:
            event["actor"] = actor
        if reason is not None:
            event["reason"] = reason
        return event

    def history(self, name: FlagName, limit: int | None = None) -> list[HistoryEvent]:
        """The flag's recorded changes, newest first (kept after a delete too).

        At most ``history_limit`` events (default 100) are kept per flag, in the store and in
        every replica.
        """
        flag = _validate.flag_name(name)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        events = self._replica.events(flag)
        if limit is not None:
            events = events[:limit]
        return [HistoryEvent.from_register(flag, r.ts, r.value) for _, r in events]

    def with_context(
        self, *, user: str | None = None, reason: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Attribute the writes made inside the ``with`` block (this thread or task) in history.

        ``with flags.with_context(user="alice"): flags.activate("chat")`` records alice as the
        actor; ``reason`` is a free-text why. Blocks nest; the inner one wins.
        """
        return write_context(user, reason)
