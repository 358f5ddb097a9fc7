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

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._grants import is_ofrep_path
from ._scope import remember_app_path

__all__ = ["OfrepCors", "check_origins"]

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


class OfrepCors:
    """Answers OFREP preflights from allowed origins, and marks OFREP answers readable by them.

    In front of the auth middleware: a preflight carries no credentials, and a 401 or 429 must
    be readable by the page too (the provider reacts to them).
    """

    def __init__(self, app: ASGIApp, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.origins
            or not is_ofrep_path(remember_app_path(scope))
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and ("*" in self.origins or origin.lower() in self.origins)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = Response(status_code=204 if allowed else 403, headers={"Vary": "Origin"})
            if allowed and origin is not None:
                response.headers.update(
                    {
                        "Access-Control-Allow-Origin": origin,
                        "Access-Control-Allow-Methods": "POST",
                        "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                        "Access-Control-Max-Age": _MAX_AGE,
                    }
                )
            await response(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                marked = MutableHeaders(scope=message)
                marked.append("Vary", "Origin")
                if allowed and origin is not None:
                    marked["Access-Control-Allow-Origin"] = origin
                    marked["Access-Control-Expose-Headers"] = "ETag, Retry-After"
            await send(message)

        await self.app(scope, receive, send_marked)
