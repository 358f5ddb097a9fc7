"""The API's error body, ``{"error": {"code", "field", "message"}}``, and where errors become it.

Every refusal the API makes goes through :func:`error_response`, so a client (and the OpenAPI
document) sees one shape whatever went wrong: bad input, no token, a route that does not exist.
"""

from __future__ import annotations

from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..errors import PartlyStoredError, RolloutError, StoreOutcomeUnknownError, UnknownFlagError
from ._scope import app_path, is_api_path

__all__ = [
    "CODES",
    "ApiError",
    "client_gone_handler",
    "error_body",
    "error_response",
    "http_exception_handler",
    "rollout_error_handler",
    "rollout_error_response",
]

#: Error code -> HTTP status. ``unavailable`` is the store being away or the Rollout closed
#: (nothing was written); ``outcome_unknown`` a write the store did not answer in time (it may
#: or may not have been stored).
CODES: Final[dict[str, int]] = {
    "malformed_json": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "unsupported_media_type": 415,
    "invalid": 422,
    "too_many_requests": 429,
    "unavailable": 503,
    "outcome_unknown": 504,
}


class ApiError(Exception):
    """A refusal with its code, the field it is about (or None) and a message for a person."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"code must be one of {sorted(CODES)}, got {code!r}")
        super().__init__(message)
        self.code = code
        self.status = CODES[code]
        self.field = field
        self.message = message


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    return {"error": {"code": code, "field": field, "message": message}}


def error_response(
    code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=CODES[code], headers=headers)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """The router's own 404 and 405: JSON under ``/api`` (as every API error), text elsewhere."""
    assert isinstance(exc, HTTPException)
    if not is_api_path(app_path(request.scope)):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    code = _HTTP_CODES.get(exc.status_code, "invalid" if exc.status_code < 500 else "unavailable")
    message = {
        "not_found": f"no such path: {request.url.path}",
        "method_not_allowed": f"{request.method} is not allowed on {request.url.path}",
    }.get(code, str(exc.detail))
    response = error_response(code, message)
    response.status_code = exc.status_code
    if exc.headers:  # the Allow header of a 405
        response.headers.update(exc.headers)
    return response


async def rollout_error_handler(_request: Request, exc: Exception) -> Response:
    """The store away, the Rollout closed, the clock skewed: a 503 the client may retry."""
    assert isinstance(exc, RolloutError)
    return rollout_error_response(exc)


async def client_gone_handler(_request: Request, exc: Exception) -> Response:
    """A client that left (or was closed for stalling) before its body was in: nothing to
    answer and nothing to log (uvicorn would log a traceback per connection)."""
    assert isinstance(exc, ClientDisconnect)
    return Response(status_code=400)  # never sent: uvicorn drops a reply to a closed connection


def rollout_error_response(exc: RolloutError) -> JSONResponse:
    """503 ``unavailable`` (nothing was written), or 504 ``outcome_unknown`` for a write the
    store did not answer in time, or stored in part (PartlyStoredError: its first chunks): it
    may have been stored, and the client must not be told otherwise. A removal from a flag that
    does not exist is the 404 ``not_found`` of the flag's name, with the library's own message
    (the one translation of UnknownFlagError)."""
    if isinstance(exc, UnknownFlagError):
        return error_response("not_found", str(exc), "name")
    stored = isinstance(exc, StoreOutcomeUnknownError | PartlyStoredError)
    code = "outcome_unknown" if stored else "unavailable"
    return error_response(code, f"{type(exc).__name__}: {exc}")
