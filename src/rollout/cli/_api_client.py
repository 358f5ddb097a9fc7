"""Commands that act on a running ``rollout serve`` through its JSON API instead of a store.

``rollout quarantine --url URL`` and ``rollout members --url URL`` ask the node itself: what a
node holds in memory (registers its peers sent and it quarantined) and what its peers concluded
about its clock cannot be seen from any other process. Standard library only (urllib), like
``rollout check-on``; the token comes from ``--token`` or ``$ROLLOUT_TOKEN``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from .._core.redact import redact_url, scrub
from ._admin import TOKEN_ENV, parse_tokens

__all__ = [
    "ApiCallError",
    "Remote",
    "add_url_options",
    "base_url_problem",
    "call_api",
    "query",
    "quote",
]

#: The longest --timeout in seconds (a day): more reaches the socket as an OverflowError.
_MAX_TIMEOUT = 86400

Remote = Callable[[argparse.Namespace], int]


class ApiCallError(Exception):
    """The node could not be asked, or refused; the message says which and why."""


class OutcomeUnknownError(ApiCallError):
    """The node answered 504: its store did not answer the write in time (it may have landed)."""


def add_url_options(command: argparse.ArgumentParser, remote: Remote) -> None:
    """``--url`` (and ``--token``, ``--timeout``): with ``--url``, ``remote`` runs instead of
    the command's store-opening handler (``rollout`` runs a ``standalone`` without a store)."""

    class _Url(argparse.Action):
        def __call__(
            self,
            parser: argparse.ArgumentParser,  # noqa: ARG002 (argparse's signature)
            namespace: argparse.Namespace,
            values: str | Sequence[Any] | None,
            option_string: str | None = None,  # noqa: ARG002
        ) -> None:
            setattr(namespace, self.dest, values)
            namespace.standalone = _guarded(remote)

    command.add_argument(
        "--url",
        metavar="URL",
        action=_Url,
        help="ask a running `rollout serve` through its API (e.g. http://127.0.0.1:8080) "
        "instead of opening the store",
    )
    command.add_argument(
        "--token",
        metavar="SECRET",
        help=f"with --url: bearer token (default: ${TOKEN_ENV}; with NAME=SECRET, the first)",
    )
    command.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="seconds to wait for the node (--url) or the peers (--peers) (10; at most 86400)",
    )


def _guarded(remote: Remote) -> Remote:
    def run(args: argparse.Namespace) -> int:
        try:
            # --url asks the node; a store or peers named too would be another replica.
            for option in ("store", "peers"):
                if getattr(args, option, None):
                    raise ApiCallError(f"--url asks the node itself; drop --{option}")
            # Bounded above too: a huge value reaches the socket and raises OverflowError.
            if not 0 < args.timeout <= _MAX_TIMEOUT:
                raise ApiCallError(
                    f"--timeout must be a positive number of seconds, at most {_MAX_TIMEOUT}, "
                    f"got {args.timeout:g}"
                )
            return remote(args)
        except (ApiCallError, ValueError) as exc:
            text = scrub(exc, getattr(args, "url", None))  # --url may hold a password
            print(f"rollout: error: {' '.join(text.split())}", file=sys.stderr)
            return 3 if isinstance(exc, OutcomeUnknownError) else 2

    return run


def base_url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as ``--url`` (a server's base address), or None.

    A user or password in it is refused rather than sent nowhere: urllib takes ``user:pw@host``
    for the host name ("Name or service not known"), and the API authenticates with a bearer
    token. A query or fragment would end up before ``/api/v1/...`` and ask another page.
    """
    shown = redact_url(url)
    if not url.startswith(("http://", "https://")):
        return f"--url must start with http:// or https://, got {shown!r}"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        return f"--url {shown!r} is not a URL: {scrub(exc, url)}"
    if parts.username is not None or parts.password is not None:
        return (
            f"--url must not carry a user name or password, got {shown!r}: the API takes a "
            f"bearer token (--token or ${TOKEN_ENV})"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return f"--url is the server's address, with no ?query or #fragment, got {shown!r}"
    return None


def call_api(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """``METHOD {--url}/api/v1{path}``'s JSON answer; ApiCallError for anything else."""
    base = str(args.url).rstrip("/")
    shown = redact_url(base)
    problem = base_url_problem(base)
    if problem is not None:
        raise ApiCallError(problem)
    headers = {"Accept": "application/json", "User-Agent": "rollout-cli"}
    token = args.token or _env_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{base}/api/v1{path}", data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return _json(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                detail = _json(exc.read())
            except ApiCallError:
                detail = None
        error = detail.get("error") if isinstance(detail, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if exc.code in (401, 403):
            message = f"{message or exc.reason}; set --token or ${TOKEN_ENV}"
        error_class = OutcomeUnknownError if exc.code == 504 else ApiCallError
        raise error_class(f"{shown} answered {exc.code}: {message or exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # HTTPException: http.client.InvalidURL for a port that is not a number.
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Connection refused", without "[Errno 111]"
        raise ApiCallError(f"cannot reach {shown}: {reason}") from None


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def query(**values: str | None) -> str:
    given = {k: v for k, v in values.items() if v is not None}
    return "?" + urllib.parse.urlencode(given) if given else ""


def _env_token() -> str | None:
    items = [t.strip() for t in os.environ.get(TOKEN_ENV, "").split(",") if t.strip()]
    if not items:
        return None
    return next(iter(parse_tokens(items, f"${TOKEN_ENV}").values()))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ApiCallError(f"the answer is not JSON: {body[:80]!r}") from None
