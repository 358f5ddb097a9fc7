"""Routes matched on the request's raw path, so a name may hold ``/``; and a router that
remembers where a path led.

A flag named ``checkout/new-flow`` travels in a URL as one segment, ``checkout%2Fnew-flow``.
Starlette routes on the decoded path, where that is two segments, and a name ending in ``/``
(``victim%2F``) reached no route at all; the router then redirected to ``victim``, another
flag. :class:`RawRoute` matches the path as sent instead, each segment percent-decoded once,
and the app turns the router's slash redirects off (``create_app``): the API never redirects.

Starlette's router asks every route in turn: the flag check is the fourteenth of the app's
routes, OFREP's evaluation the thirtieth, and asking them cost a fifth of a check's time in the
app. :class:`ResolvedRouter` remembers which route a method and path reached (a bounded memo),
so a path asked again goes straight to its route.

A route may also answer *directly* (``RawRoute(direct=...)``: a plain ASGI callable): the app's
gate (``_gate.py``) hands a request it resolved to such a route straight to it, past Starlette's
exception middleware, router and request wrappers, which cost as much as the check itself. A
direct answer catches what the route's endpoint catches; anything else reaches the server
error middleware, as it did through the exception middleware (which handles none of it).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any, Final

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "MEMO_PATH_LIMIT",
    "MEMO_SIZE",
    "RawRoute",
    "ResolvedRouter",
    "decode_segment",
    "raw_route_path",
]

#: Resolutions remembered at most (the oldest forgotten first), and the longest path
#: remembered: what a client sending many distinct paths can make the memo hold is bounded.
MEMO_SIZE: Final = 2048
MEMO_PATH_LIMIT: Final = 256


def decode_segment(raw: str) -> str:
    """One path segment percent-decoded once. Bytes that are not UTF-8 become lone surrogates
    (``surrogateescape``), which the name check then refuses by name (a 422, not a guess)."""
    return urllib.parse.unquote(raw, errors="surrogateescape")


#: Where a request's raw route path is kept once worked out: the router asks every route in
#: turn with the same scope, and working it out again for each was a sixth of a check's cost.
_MEMO = "rollout.raw_route_path"


def raw_route_path(scope: Scope) -> str | None:
    """The raw path under the app's mount point, still percent-encoded; None if unknown."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):
        return None
    root: str = scope.get("root_path", "")
    memo = scope.get(_MEMO)
    if memo is not None and memo[0] is raw and memo[1] == root:
        return memo[2]  # type: ignore[no-any-return]
    route_path = _under_root(raw, root)
    scope[_MEMO] = (raw, root, route_path)
    return route_path


def _under_root(raw: bytes, root: str) -> str | None:
    path = raw.partition(b"?")[0].decode("latin-1")
    if not root:
        return path
    # Mounted (at /admin, say): drop the raw segments that spell the decoded root path.
    segments = path.split("/")
    for count in range(1, len(segments) + 1):
        prefix = "/".join(decode_segment(s) for s in segments[:count])
        if prefix == root:
            rest = "/".join(segments[count:])
            return "/" + rest if count < len(segments) else ""
        if len(prefix) > len(root):
            break
    return None


class RawRoute(Route):
    """A :class:`~starlette.routing.Route` matched against the raw path.

    ``{name}`` matches one raw segment (an encoded ``/`` included) and ``{name:path}`` the
    rest of the path; both are percent-decoded once, segment by segment, into ``path_params``.
    Without a raw path (an ASGI server that gives none) it routes as a plain Route.

    ``direct``: the same answers as ``endpoint`` as a plain ASGI app, which the app's gate
    calls for a request resolved to this route (see the module's docstring).
    """

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, direct: ASGIApp | None = None, **kw: Any
    ) -> None:
        super().__init__(path, endpoint, **kw)
        self.direct = direct

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return super().matches(scope)
        route_path = raw_route_path(scope)
        if route_path is None:
            return super().matches(scope)
        match = self.path_regex.match(route_path)
        if not match:
            return Match.NONE, {}
        decoded: dict[str, Any] = {
            key: "/".join(decode_segment(s) for s in value.split("/"))
            for key, value in match.groupdict().items()
        }
        path_params = {**scope.get("path_params", {}), **decoded}
        child_scope = {"endpoint": self.endpoint, "path_params": path_params}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope


#: A resolution's key: method, decoded path, root path, raw path (without its query).
_Key = tuple[str, str, str, bytes | None]


class ResolvedRouter(Router):
    """A :class:`~starlette.routing.Router` that remembers which route each (method, path)
    reached, so the routes are asked once per path rather than once per request.

    Only a full match of a plain route (:class:`~starlette.routing.Route`, :class:`RawRoute`)
    is remembered: its answer depends on nothing but the method, the path (decoded and raw)
    and the root path, which make the key. Everything else (405s, 404s, mounts, websockets,
    an app mounted under another's path parameters) is routed as Starlette does. The memo is
    dropped whenever the list of routes is replaced or changes length (``add_route``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolved: dict[_Key, tuple[Route, dict[str, Any]]] = {}
        self._resolved_for: tuple[int, int] = (id(self.routes), len(self.routes))

    @property
    def remembered(self) -> int:
        """How many resolutions are remembered (at most :data:`MEMO_SIZE`)."""
        return len(self._resolved)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.resolve(scope)
        if found is None:
            await super().app(scope, receive, send)
            return
        route = self.enter(scope, found)
        await route.handle(scope, receive, send)

    def resolve(self, scope: Scope) -> tuple[Route, dict[str, Any]] | None:
        """The plain route this request fully matches and its child scope, remembered per
        path; None where Starlette's router must decide (see the class's docstring)."""
        if scope["type"] != "http" or scope.get("path_params"):
            return None
        raw = scope.get("raw_path")
        key: _Key = (
            scope["method"],
            scope["path"],
            scope.get("root_path", ""),
            raw.partition(b"?")[0] if isinstance(raw, bytes) else None,
        )
        routes = self.routes
        if self._resolved_for != (id(routes), len(routes)):
            self._resolved.clear()
            self._resolved_for = (id(routes), len(routes))
        found = self._resolved.get(key)
        if found is None:
            found = self._first_full_match(routes, scope)
            if found is not None and len(key[1]) <= MEMO_PATH_LIMIT:
                if len(self._resolved) >= MEMO_SIZE:
                    del self._resolved[next(iter(self._resolved))]
                self._resolved[key] = found
        return found

    def enter(self, scope: Scope, found: tuple[Route, dict[str, Any]]) -> Route:
        """Write into the scope what Starlette's router writes for the route it picks."""
        route, child_scope = found
        if "router" not in scope:
            scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        scope["path_params"] = dict(child_scope["path_params"])  # the handler's own copy
        return route

    @staticmethod
    def _first_full_match(
        routes: list[BaseRoute], scope: Scope
    ) -> tuple[Route, dict[str, Any]] | None:
        """The route Starlette's router would hand the request to, when it is a full match of
        a plain route; None otherwise (the router then decides, as it always did)."""
        for route in routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                # Exactly these classes: a subclass may match on more than the key holds.
                if isinstance(route, Route) and type(route) in (Route, RawRoute):
                    return route, dict(child_scope)
                return None
        return None
