"""The provider's status from the Rollout's readiness: READY, STALE or ERROR, and the events.

A Rollout answers every check from memory, so it can always evaluate; what can go wrong is that
its flags stop following the source of truth. That is OpenFeature's STALE ("the cached state
may not be up to date"). The signals are those of ``rollout serve``'s ``/readyz``
(admin/_health.py), read from ``flags.stats()`` and ``flags.ping_store()``:

* ERROR: the Rollout is closed (it follows nothing any more and refuses writes), or its store
  answers but refuses to serve (``StoreError``: a SQLite file deleted under the process, a
  damaged record);
* STALE: Redis's subscriber is not connected (changes made elsewhere are not arriving), a node
  configured with peers has none connected, or the store cannot be reached
  (``StoreUnavailableError``);
* READY: none of these.

A daemon thread reads them every ``interval`` seconds while the provider is initialized and
emits PROVIDER_STALE, PROVIDER_ERROR or PROVIDER_READY on each change (never twice the same).
Its first read comes one interval after the watch starts, at the end of ``initialize``: by then
the SDK has set READY (it does so as ``initialize`` returns), so a Rollout that is already stale
when the provider is set is reported STALE rather than left READY.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openfeature.event import ProviderEvent, ProviderEventDetails
from openfeature.exception import ErrorCode

from ..errors import StoreUnavailableError

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = ["Health", "StatusWatch", "health"]

logger = logging.getLogger("rollout")

#: (event, why): the event that says the status, and a message (None when ready).
Health = tuple[ProviderEvent, str | None]

READY: Health = (ProviderEvent.PROVIDER_READY, None)


def health(flags: Rollout) -> Health:
    """The Rollout's status now, as the OpenFeature event that announces it."""
    stats = flags.stats()
    if stats["closed"]:
        return ProviderEvent.PROVIDER_ERROR, "the Rollout is closed: its flags follow nothing"
    stale = _transport_problem(stats["sync"])
    if stale is not None:
        return ProviderEvent.PROVIDER_STALE, stale
    try:
        flags.ping_store()
    except StoreUnavailableError as exc:
        return ProviderEvent.PROVIDER_STALE, f"the store cannot be reached: {exc}"
    except Exception as exc:  # StoreError, ClosedError, a custom store's own
        return ProviderEvent.PROVIDER_ERROR, f"the store refuses to serve: {exc}"
    return READY


def _transport_problem(sync: dict[str, Any] | None) -> str | None:
    if sync is None:
        return None
    if sync.get("transport") == "redis" and not sync.get("connected"):
        return "not subscribed to Redis: changes made by other processes are not arriving"
    if sync.get("transport") == "peer" and sync.get("members") and not sync.get("peers_connected"):
        return "no peer is connected: changes made on other nodes are not arriving"
    return None


class StatusWatch:
    """Reads :func:`health` every ``interval`` seconds on a daemon thread; calls ``emit`` with
    the event and its details whenever the status changes (starting from READY)."""

    def __init__(
        self,
        flags: Rollout,
        interval: float,
        emit: Callable[[ProviderEvent, ProviderEventDetails], None],
    ) -> None:
        self._flags = flags
        self._interval = interval
        self._emit = emit
        self._stop = threading.Event()
        self.status: Health = READY
        self._thread = threading.Thread(
            target=self._run, name="rollout-openfeature-status", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop reading (returns at once; a round trip under way ends on its own)."""
        self._stop.set()

    def _run(self) -> None:
        # The first read waits one interval. The watch starts at the end of initialize(), and
        # the SDK sets the status to READY only after initialize() has returned: an event sent
        # before that (a Rollout stale from the start) would be overwritten by that READY, and
        # the watch, having said it once, would never say it again.
        while not self._stop.wait(self._interval):
            try:
                now = health(self._flags)
            except Exception:  # never let the watch die: the next round reads again
                logger.exception("OpenFeature provider: reading the Rollout's status failed")
                now = self.status
            if now[0] != self.status[0] and not self._stop.is_set():
                self.status = now
                event, message = now
                error_code = ErrorCode.GENERAL if event is ProviderEvent.PROVIDER_ERROR else None
                self._emit(event, ProviderEventDetails(message=message, error_code=error_code))
