"""``rollout check-on NAME...``: a Nagios/Icinga plugin asking a ``rollout serve`` over HTTP.

For flags that have reached maturity and must stay on. The plugin convention: one line of output
(``STATUS: text | perfdata``) and the exit status says it all:

* 0 ``OK``: every named flag is fully on (state ``on``: 100% of users, nobody excluded);
* 2 ``CRITICAL``: some are not (off, partial, or missing); the line names them;
* 3 ``UNKNOWN``: the answer could not be had (server unreachable, time-out, token refused, a
  server error, an answer that is not the API's; bad command-line arguments too).

It never opens a store: only ``GET /api/v1/flags/{name}`` with the standard library (urllib),
so the check stays light wherever the monitoring agent runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, NoReturn

from ._admin import TOKEN_ENV, parse_tokens

__all__ = ["CRITICAL", "DEFAULT_URL", "OK", "UNKNOWN", "URL_ENV", "add_check_on", "run_check_on"]

URL_ENV = "ROLLOUT_URL"
DEFAULT_URL = "http://127.0.0.1:8080"
OK, CRITICAL, UNKNOWN = 0, 2, 3


class UnknownStateError(Exception):
    """The state of the flags could not be learned; the message says why."""


def add_check_on(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``check-on`` on the ``rollout`` subparsers (it needs no store)."""
    description = (
        "Nagios/Icinga plugin: exit 0 (OK) when every NAME is fully on, 2 (CRITICAL) naming "
        "those that are not, 3 (UNKNOWN) when the server cannot tell"
    )
    check = commands.add_parser("check-on", help=description, description=description)
    check.add_argument("names", nargs="+", metavar="NAME", help="flags that must be on")
    check.add_argument(
        "--url",
        metavar="URL",
        help=f"the rollout serve to ask (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    check.add_argument(
        "--token",
        metavar="SECRET",
        help=f"bearer token (default: ${TOKEN_ENV}; with NAME=SECRET items, the first secret)",
    )
    check.add_argument(
        "--timeout", metavar="S", type=float, default=10.0, help="seconds per request (10)"
    )
    check.set_defaults(standalone=run_check_on)
    # A plugin's usage error is UNKNOWN (3), not argparse's 2 (which Nagios reads as CRITICAL).
    setattr(check, "error", _usage_error)  # noqa: B010 (argparse has no hook for the status)
    return check


def _usage_error(message: str) -> NoReturn:
    print(f"UNKNOWN: rollout check-on: {message}")
    sys.exit(UNKNOWN)


def run_check_on(args: argparse.Namespace) -> int:
    base = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    token = args.token or _env_token()
    try:
        if not args.timeout > 0:
            raise UnknownStateError(f"--timeout must be a positive number, got {args.timeout}")
        flags = {name: _fetch(base, name, token, args.timeout) for name in args.names}
    except UnknownStateError as exc:
        print(f"UNKNOWN: {' '.join(str(exc).split())}")
        return UNKNOWN
    not_on = {name: flag for name, flag in flags.items() if flag is None or flag["state"] != "on"}
    total = len(flags)
    perfdata = f"flags_on={total - len(not_on)};;;0;{total} flags_not_on={len(not_on)};;0;0;{total}"
    if not not_on:
        print(f"OK: {_names(flags)} fully on | {perfdata}")
        return OK
    listed = ", ".join(f"{name} ({_describe(flag)})" for name, flag in not_on.items())
    print(f"CRITICAL: {len(not_on)} of {total} not fully on: {listed} | {perfdata}")
    return CRITICAL


def _env_token() -> str | None:
    items = [t.strip() for t in os.environ.get(TOKEN_ENV, "").split(",") if t.strip()]
    if not items:
        return None
    try:
        return next(iter(parse_tokens(items, f"${TOKEN_ENV}").values()))
    except ValueError as exc:
        raise UnknownStateError(str(exc)) from None


def _names(flags: Mapping[str, object]) -> str:
    return ", ".join(flags) if len(flags) <= 5 else f"all {len(flags)} flags"


def _fetch(base: str, name: str, token: str | None, timeout: float) -> dict[str, Any] | None:
    """The flag's JSON, or None when the server says it does not exist."""
    url = f"{base}/api/v1/flags/{urllib.parse.quote(name, safe='')}"
    headers = {"Accept": "application/json", "User-Agent": "rollout-check-on"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        _raise_unless_missing(base, name, exc)
        return None  # a missing flag is not on
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Connection refused", without "[Errno 111]"
        raise UnknownStateError(f"cannot reach {base}: {reason}") from None
    flag = _json(body)
    if not isinstance(flag, dict) or not isinstance(flag.get("state"), str):
        raise UnknownStateError(f"{url} did not answer with a flag: {body[:80]!r}")
    return flag


def _raise_unless_missing(base: str, name: str, error: urllib.error.HTTPError) -> None:
    with error:
        body = _json(error.read())
    detail = body.get("error") if isinstance(body, dict) else None
    code = detail.get("code") if isinstance(detail, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    if error.code == 404 and code == "not_found":
        return
    if error.code in (401, 403):
        raise UnknownStateError(
            f"{base} refused the token ({error.code} {code or error.reason}); "
            f"set --token or ${TOKEN_ENV}"
        )
    raise UnknownStateError(f"{base} answered {error.code} for {name!r}: {message or error.reason}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _describe(flag: Mapping[str, Any] | None) -> str:
    """``missing``, ``off``, or ``partial: 20% of users, 2 excluded``."""
    if flag is None:
        return "missing"
    if flag["state"] != "partial":
        return str(flag["state"])
    parts = []
    for key, unit in (("percentage", "of users"), ("percentage_of_time", "of the time")):
        if flag.get(key):
            parts.append(f"{flag[key]:g}% {unit}")
    for key, one, many in (
        ("users", "user", "users"),
        ("groups", "group", "groups"),
        ("excluded_users", "excluded", "excluded"),
    ):
        if flag.get(key):
            count = len(flag[key])
            parts.append(f"{count} {one if count == 1 else many}")
    return f"partial: {', '.join(parts)}" if parts else "partial"
