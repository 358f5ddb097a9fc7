"""Routes matched on the request's raw path, so a name may hold ``/``.

A flag named ``checkout/new-flow`` travels in a URL as one segment, ``checkout%2Fnew-flow``.
Starlette routes on the decoded path, where that is two segments, and a name ending in ``/``
(``victim%2F``) reached no route at all; the router then redirected to ``victim``, another
flag. :class:`RawRoute` matches the path as sent instead, each segment percent-decoded once,
and the app turns the router's slash redirects off (``create_app``): the API never redirects.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.routing import Match, Route
from starlette.types import Scope

__all__ = ["RawRoute", "decode_segment"]


def decode_segment(raw: str) -> str:
    """One path segment percent-decoded once. Bytes that are not UTF-8 become lone surrogates
    (``surrogateescape``), which the name check then refuses by name (a 422, not a guess)."""
    return urllib.parse.unquote(raw, errors="surrogateescape")


#: Where a request's raw route path is kept once worked out: the router asks every route in
#: turn with the same scope, and working it out again for each was a sixth of a check's cost.
_MEMO = "rollout.raw_route_path"


def _raw_route_path(scope: Scope) -> str | None:
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
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return super().matches(scope)
        route_path = _raw_route_path(scope)
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
