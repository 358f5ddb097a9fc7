"""CORS for the OFREP endpoints only, for the origins ``rollout serve --cors-origin`` names.

A web page on another origin (the application's front end) evaluates flags with the browser
OFREP provider: its POST with a JSON body and an ``Authorization`` header is preflighted, and
its poll reads the ``ETag`` header, which a cross-origin page sees only when exposed. Nothing
else the server has (the API, the dashboard) is ever shared with another origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import Message, Send

from ._asked import Asked

__all__ = ["check_origins", "cors_preflight", "cors_send"]

_ALLOW_HEADERS: Final = "authorization, content-type, if-none-match"
_MAX_AGE: Final = "600"


def check_origins(origins: Iterable[str] | None) -> frozenset[str]:
    """Origins as a browser sends them (``https://app.example.com``, ``http://localhost:3000``),
    or ``*`` for any; each checked, scheme and host lowercased."""
    if origins is None:
        return frozenset()
    if isinstance(origins, str) or not isinstance(origins, Iterable):
        raise TypeError(f"cors_origins must be a list of origins, got {origins!r}")
    checked = set()
    for origin in origins:
        if origin == "*":
            checked.add(origin)
            continue
        parts = urlsplit(origin) if isinstance(origin, str) else None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.netloc
            or origin.rstrip("/") != f"{parts.scheme}://{parts.netloc}"
        ):
            raise ValueError(
                f"cors_origins: each must be an origin like https://app.example.com (scheme "
                f"and host, no path), got {origin!r}"
            )
        checked.add(f"{parts.scheme}://{parts.netloc}".lower())
    return frozenset(checked)


def cors_preflight(origins: frozenset[str], asked: Asked) -> Response | None:
    """The answer to an OFREP preflight (204 for an allowed origin, else 403), or None when
    the request is not one. Asked before authentication: a preflight carries no credentials."""
    if asked.scope["method"] != "OPTIONS" or b"access-control-request-method" not in asked.headers:
        return None
    origin = asked.header(b"origin")
    response = Response(
        status_code=204 if _allowed(origins, origin) else 403, headers={"Vary": "Origin"}
    )
    if origin is not None and _allowed(origins, origin):
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                "Access-Control-Max-Age": _MAX_AGE,
            }
        )
    return response


def cors_send(origins: frozenset[str], asked: Asked, send: Send) -> Send:
    """``send``, marking an OFREP answer (a 401 or 429 included: the provider reacts to them)
    readable by an allowed origin."""
    origin = asked.header(b"origin")
    allowed = _allowed(origins, origin)

    async def send_marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            marked = MutableHeaders(scope=message)
            marked.append("Vary", "Origin")
            if allowed and origin is not None:
                marked["Access-Control-Allow-Origin"] = origin
                marked["Access-Control-Expose-Headers"] = "ETag, Retry-After"
        await send(message)

    return send_marked


def _allowed(origins: frozenset[str], origin: str | None) -> bool:
    return origin is not None and ("*" in origins or origin.lower() in origins)
