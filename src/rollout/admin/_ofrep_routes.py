"""The OFREP routes, or, without the ``openfeature`` extra, routes that say how to get them.

OFREP evaluates through the OpenFeature provider (``rollout.openfeature``), which needs
``openfeature-sdk``; the rest of the admin app does not, so only these routes depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._client.rollout import Rollout
from ._auth import Auth
from ._code_threads import CodeDeadline
from ._events import StreamSlots
from ._ofrep_stream import EVENTS_PATH, OfrepStream

__all__ = ["OfrepService", "ofrep_service"]


@dataclass
class OfrepService:
    """OFREP's routes, and what the app's lifespan starts and stops."""

    routes: list[BaseRoute]
    start: Callable[[], None] = lambda: None
    stop: Callable[[], None] = lambda: None


def ofrep_service(
    flags: Rollout,
    auth: Auth,
    max_body: int,
    max_streams: StreamSlots,
    code: CodeDeadline | None = None,
) -> OfrepService:
    """The evaluation endpoints (``code``: the deadline of those that run the application's
    code) and the change stream (``max_streams`` open at most)."""
    try:
        from ._ofrep import Ofrep
    except ImportError as exc:
        reason = f"OFREP needs openfeature-sdk: pip install 'rollout[openfeature]' ({exc})"

        async def missing(_request: Request) -> Response:
            return JSONResponse({"errorDetails": reason}, status_code=501)

        return OfrepService([Route("/ofrep/{rest:path}", missing, methods=["GET", "POST"])])
    stream = OfrepStream(flags, auth, max_streams)
    ofrep = Ofrep(flags, auth, stream, max_body=max_body, code=code)
    routes: list[BaseRoute] = [*ofrep.routes(), Route(EVENTS_PATH, stream, methods=["GET"])]
    return OfrepService(routes, ofrep.start, ofrep.stop)
