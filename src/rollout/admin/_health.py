"""Probes for load balancers and Kubernetes: ``/healthz`` and ``/livez`` (alive), ``/readyz``.

Liveness says the process answers, and nothing more: it reads no store, so a store that is away
never gets the process restarted (which would not bring the store back). Readiness says whether
this replica should be sent traffic, with one entry per check:

- ``store``: the store answers a cheap round trip now (SQLite: a read, and the file at its path is
  still the one opened; Redis: ``PING``), within :data:`STORE_TIMEOUT` seconds. One probe at a
  time reaches it: while one hangs (a Redis that stopped answering), later requests wait on that
  same one, so probes never pile up threads;
  and an answer is reused for :data:`STORE_FRESH` seconds, so however fast an unauthenticated
  client asks, the store is reached about once a second (a load balancer asks every few).
- ``transport``: Redis's subscriber (PostgreSQL's listener) is connected (else changes made
  elsewhere are not arriving);
  the peer transport and no transport always pass (a first node alone is ready).
- ``clock``: local writes are not refused for this node's clock (its peers doubt it).
- ``open``: the Rollout is not closed (the server is stopping).

Public like ``/healthz`` (no token), so each entry says what is wrong in general terms and never
the store's URL, addresses or an error's text (which can name hosts or, in a URL, a password):
those are in the log and, with a token, in ``/api/v1/members``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import StoreUnavailableError
from ._limits import Throttled

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = ["HEALTH_PATHS", "STORE_FRESH", "STORE_TIMEOUT", "Readiness", "health_routes"]

#: Seconds the store has to answer a readiness probe.
STORE_TIMEOUT = 2.0
#: Seconds the outcome of a store round trip answers later probes (measured from its start).
STORE_FRESH = 1.0
#: The probes' paths (public: no token).
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")

logger = logging.getLogger("rollout")
_NO_STORE = {"Cache-Control": "no-store"}


class Readiness:
    """``GET /readyz`` for one :class:`Rollout`."""

    def __init__(
        self, flags: Rollout, store_timeout: float = STORE_TIMEOUT, store_fresh: float = STORE_FRESH
    ) -> None:
        self._flags = flags
        self._store_timeout = store_timeout
        self._store_fresh = store_fresh
        self._ping: asyncio.Future[None] | None = None
        self._pinged_at = 0.0
        self._log = Throttled(logger, 30.0)

    async def respond(self, _request: Request) -> JSONResponse:
        stats = self._flags.stats()
        checks = {
            "open": _check(not stats["closed"], "the server is stopping"),
            "store": await self._store(),
            "transport": _transport(stats["sync"]),
            "clock": _check(
                stats["clock_problem"] is None,
                "local writes are refused: this node's peers have not confirmed its clock",
            ),
        }
        ready = all(check["ok"] for check in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
            headers=_NO_STORE,
        )

    async def _store(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        stale = loop.time() - self._pinged_at >= self._store_fresh
        if self._ping is None or (self._ping.done() and stale):
            self._pinged_at = loop.time()
            self._ping = loop.run_in_executor(None, self._flags.ping_store)
            # Its outcome may come after every waiter gave up: retrieve it, so asyncio does not
            # log "exception was never retrieved".
            self._ping.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._ping), self._store_timeout)
        except TimeoutError:
            return _check(False, f"the store did not answer within {self._store_timeout:g} s")
        except StoreUnavailableError as exc:
            self._log.warning("readiness: the store cannot be reached: %s", exc)
            return _check(False, f"the store cannot be reached ({type(exc).__name__})")
        except Exception as exc:  # StoreError (a SQLite file deleted), ClosedError; a custom store
            self._log.warning("readiness: the store refuses to serve: %s", exc)
            return _check(False, f"the store refuses to serve ({type(exc).__name__}; see the log)")
        return _check(True, "the store answers")


def _check(ok: bool, problem: str) -> dict[str, Any]:
    return {"ok": ok, "problem": None if ok else problem}


def _transport(sync: dict[str, Any] | None) -> dict[str, Any]:
    if sync is not None and sync.get("transport") == "redis":
        return _check(
            bool(sync.get("connected")),
            "not subscribed to Redis: changes made by other processes are not arriving",
        )
    if sync is not None and sync.get("transport") == "postgres":
        return _check(
            bool(sync.get("connected")),
            "not listening on PostgreSQL: changes made by other processes are not arriving",
        )
    return _check(True, "")


def health_routes(flags: Rollout) -> list[Route]:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "flags": len(flags.features())}, headers=_NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", healthz, methods=["GET"]),
        Route("/readyz", Readiness(flags).respond, methods=["GET"]),
    ]
