"""The OFREP routes, or, without the ``openfeature`` extra, routes that say how to get them.

OFREP evaluates through the OpenFeature provider (``rollout.openfeature``), which needs
``openfeature-sdk``; the rest of the admin app does not, so only these routes depend on it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._client.rollout import Rollout

__all__ = ["ofrep_routes"]


def ofrep_routes(flags: Rollout, max_body: int) -> list[BaseRoute]:
    try:
        from ._ofrep import Ofrep
    except ImportError as exc:
        reason = f"OFREP needs openfeature-sdk: pip install 'rollout[openfeature]' ({exc})"

        async def missing(_request: Request) -> Response:
            return JSONResponse({"errorDetails": reason}, status_code=501)

        return [Route("/ofrep/{rest:path}", missing, methods=["POST"])]
    return list(Ofrep(flags, max_body=max_body).routes())
