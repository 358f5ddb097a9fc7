"""``rollout check-on NAME...``: a Nagios/Icinga plugin asking a ``rollout serve`` over HTTP.

For flags that have reached maturity and must stay on. It follows the Monitoring Plugins
development guidelines (rollout.cli._plugin): one line, ``ROLLOUT STATUS: text | perfdata``, and
the exit status says it all:

* 0 ``OK``: every named flag is fully on (state ``on``: 100% of users, nobody excluded), or,
  with ``-w``/``-c``, every flag's percentage of users is within the ranges;
* 1 ``WARNING``: with ``-w``, some flag's percentage is outside its range;
* 2 ``CRITICAL``: some are not fully on (off, partial, or missing), or outside ``-c``;
* 3 ``UNKNOWN``: the answer could not be had (server unreachable, no answer within
  ``--timeout``, token refused, a server error, an answer that is not the API's, a redirect to
  another origin; bad command-line arguments too, unknown options included).

It never opens a store: only ``GET /api/v1/flags/{name}`` with the standard library (urllib),
so the check stays light wherever the monitoring agent runs it. The token is sent to the
``--url``'s origin (scheme, host and port) and nowhere else: a redirect to another origin is
not followed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from importlib import metadata
from typing import Any, NoReturn

from .._core.redact import redact_url, scrub
from ._admin import TOKEN_ENV, parse_tokens
from ._api_client import base_url_problem
from ._plugin import CRITICAL, OK, STATUS, UNKNOWN, WARNING, Range, label, text

__all__ = [
    "CRITICAL",
    "DEFAULT_URL",
    "OK",
    "SERVICE",
    "UNKNOWN",
    "URL_ENV",
    "WARNING",
    "add_check_on",
    "run_check_on",
    "usage_error",
]

URL_ENV = "ROLLOUT_URL"
DEFAULT_URL = "http://127.0.0.1:8080"
SERVICE = "ROLLOUT"
#: Seconds a request's socket may wait beyond the deadline: the deadline, kept by the caller's
#: clock, always ends the run first, with one message.
_SOCKET_SLACK = 1.0
#: The longest --timeout: a day, far beyond any monitoring system's own check time-out.
_MAX_TIMEOUT = 86400

Flag = dict[str, Any]


class UnknownStateError(Exception):
    """The state of the flags could not be learned; the message says why."""


def add_check_on(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``check-on`` on the ``rollout`` subparsers (it needs no store)."""
    description = (
        "Nagios/Icinga plugin: exit 0 (OK) when every NAME is fully on, 2 (CRITICAL) naming "
        "those that are not, 3 (UNKNOWN) when the server cannot tell; with -w/-c, judge each "
        "flag's percentage of users against ranges instead (1 is WARNING)"
    )
    check = commands.add_parser("check-on", help=description, description=description)
    check.add_argument("names", nargs="+", metavar="NAME", help="flags that must be on")
    check.add_argument(
        "-u",
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
        "-t",
        "--timeout",
        metavar="S",
        type=_seconds,
        default=10.0,
        help="seconds for the whole check: every request, connect and read (10)",
    )
    check.add_argument(
        "-w",
        "--warning",
        metavar="RANGE",
        type=_range,
        help="WARNING when a flag's percentage of users is outside RANGE (e.g. 90: for >= 90)",
    )
    check.add_argument(
        "-c",
        "--critical",
        metavar="RANGE",
        type=_range,
        help="CRITICAL when a flag's percentage of users is outside RANGE (e.g. 50:)",
    )
    check.add_argument(
        "-V", "--version", action="version", version=f"rollout check-on {_version()}"
    )
    check.set_defaults(standalone=run_check_on, usage_error=usage_error)
    # A plugin's usage error is UNKNOWN (3), not argparse's 2 (which Nagios reads as CRITICAL).
    setattr(check, "error", usage_error)  # noqa: B010 (argparse has no hook for the status)
    # --help and --version did no check: UNKNOWN (3), as the Monitoring Plugins guidelines ask,
    # so a command line left at -V in a monitoring config never shows as OK.
    setattr(check, "exit", _exit_unknown)  # noqa: B010
    return check


def _exit_unknown(status: int = 0, message: str | None = None) -> NoReturn:
    """argparse's ``exit`` for check-on: after --help and --version (status 0), exit 3."""
    if message:
        sys.stderr.write(message)
    sys.exit(UNKNOWN if status == 0 else status)


def usage_error(message: str) -> NoReturn:
    """Print a usage error as the plugin's one UNKNOWN line (on stdout) and exit 3."""
    print(f"{SERVICE} UNKNOWN: rollout check-on: {text(message)}")
    sys.exit(UNKNOWN)


def _range(spec: str) -> Range:
    try:
        return Range.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    if seconds > _MAX_TIMEOUT:  # beyond what a thread join or a socket accepts (a traceback)
        raise argparse.ArgumentTypeError(f"must be at most {_MAX_TIMEOUT} seconds, got {text!r}")
    return seconds


def _version() -> str:
    try:
        return metadata.version("rollout")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def run_check_on(args: argparse.Namespace) -> int:
    base = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    problem = base_url_problem(base)
    if problem is not None:
        print(f"{SERVICE} UNKNOWN: {text(problem)}")
        return UNKNOWN
    try:
        token = args.token or _env_token()
        flags = _fetch_all(base, args.names, token, args.timeout)
    except UnknownStateError as exc:
        print(f"{SERVICE} UNKNOWN: {text(scrub(exc, base))}")
        return UNKNOWN
    status, summary = _judge(flags, args.warning, args.critical)
    perfdata = _perfdata(flags, args.warning, args.critical)
    print(f"{SERVICE} {STATUS[status]}: {text(summary)} | {perfdata}")
    return status


def _fetch_all(
    base: str, names: list[str], token: str | None, timeout: float
) -> dict[str, Flag | None]:
    """Every flag, all within ``timeout`` seconds, or UnknownStateError.

    urllib's timeout bounds each socket operation, not a request (a server trickling a byte at
    a time, a slow DNS answer) and not several requests: the requests run on a daemon thread and
    this one waits for the deadline.
    """
    deadline = time.monotonic() + timeout
    outcome: list[dict[str, Flag | None] | UnknownStateError] = []

    def fetch() -> None:
        try:
            outcome.append({name: _fetch(base, name, token, deadline) for name in names})
        except UnknownStateError as exc:
            outcome.append(exc)
        except Exception as exc:  # whatever it is, the plugin says UNKNOWN, and at once
            outcome.append(UnknownStateError(f"asking {redact_url(base)} failed: {exc!r}"))

    worker = threading.Thread(target=fetch, name="rollout-check-on", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise UnknownStateError(f"no answer from {redact_url(base)} within {timeout:g} s")
    if isinstance(outcome[0], UnknownStateError):
        raise outcome[0]
    return outcome[0]


def _env_token() -> str | None:
    items = [t.strip() for t in os.environ.get(TOKEN_ENV, "").split(",") if t.strip()]
    if not items:
        return None
    try:
        return next(iter(parse_tokens(items, f"${TOKEN_ENV}").values()))
    except ValueError as exc:
        raise UnknownStateError(str(exc)) from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within the origin the token is meant for."""

    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            fp.close()
            raise UnknownStateError(
                f"{redact_url(req.full_url)} redirected ({code}) to {redact_url(newurl)}, "
                "another origin: not followed (the token is only sent where --url points)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_SameOriginRedirects)


def _fetch(base: str, name: str, token: str | None, deadline: float) -> Flag | None:
    """The flag's JSON, or None when the server says it does not exist."""
    url = f"{base}/api/v1/flags/{urllib.parse.quote(name, safe='')}"
    headers = {"Accept": "application/json", "User-Agent": "rollout-check-on"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    shown = redact_url(base)
    try:
        timeout = max(deadline - time.monotonic(), 0.0) + _SOCKET_SLACK
        with _opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        _raise_unless_missing(shown, name, exc)
        return None  # a missing flag is not on
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Connection refused", without "[Errno 111]"
        raise UnknownStateError(f"cannot reach {shown}: {reason}") from None
    flag = _json(body)
    if (
        not isinstance(flag, dict)
        or not isinstance(flag.get("state"), str)
        or type(flag.get("percentage")) not in (int, float)
    ):
        raise UnknownStateError(f"{redact_url(url)} did not answer with a flag: {body[:80]!r}")
    return flag


def _raise_unless_missing(shown: str, name: str, error: urllib.error.HTTPError) -> None:
    with error:
        body = _json(error.read())
    detail = body.get("error") if isinstance(body, dict) else None
    code = detail.get("code") if isinstance(detail, dict) else None
    message = detail.get("message") if isinstance(detail, dict) else None
    if error.code == 404 and code == "not_found":
        return
    if error.code in (401, 403):
        raise UnknownStateError(
            f"{shown} refused the token ({error.code} {code or error.reason}); "
            f"set --token or ${TOKEN_ENV}"
        )
    raise UnknownStateError(
        f"{shown} answered {error.code} for {name!r}: {message or error.reason}"
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# Judging and reporting --------------------------------------------------------------------------


def _judge(
    flags: Mapping[str, Flag | None], warning: Range | None, critical: Range | None
) -> tuple[int, str]:
    """The status, and the text before the perfdata."""
    total = len(flags)
    if warning is None and critical is None:
        not_on = {n: f for n, f in flags.items() if f is None or f["state"] != "on"}
        if not not_on:
            return OK, f"{_names(flags)} fully on"
        listed = ", ".join(f"{n} ({_describe(f)})" for n, f in not_on.items())
        return CRITICAL, f"{len(not_on)} of {total} not fully on: {listed}"
    judged: dict[str, tuple[int, str]] = {}
    for name, flag in flags.items():
        if flag is None:
            judged[name] = (CRITICAL, "missing")
        elif critical is not None and critical.alerts(flag["percentage"]):
            judged[name] = (CRITICAL, f"{flag['percentage']:g}%, critical {critical.spec}")
        elif warning is not None and warning.alerts(flag["percentage"]):
            judged[name] = (WARNING, f"{flag['percentage']:g}%, warning {warning.spec}")
        else:
            judged[name] = (OK, f"{flag['percentage']:g}%")
    status = max(s for s, _ in judged.values())
    # All of them when OK, else those that set the status.
    shown = {n: why for n, (s, why) in judged.items() if status in (s, OK)}
    listed = ", ".join(f"{n} ({why})" for n, why in shown.items())
    if status == OK:
        return OK, f"{total} of {total} within thresholds (% of users): {listed}"
    return status, f"{len(shown)} of {total} outside thresholds (% of users): {listed}"


def _perfdata(
    flags: Mapping[str, Flag | None], warning: Range | None, critical: Range | None
) -> str:
    total = len(flags)
    on = sum(1 for flag in flags.values() if flag is not None and flag["state"] == "on")
    warn = warning.spec if warning else ""
    crit = critical.spec if critical else ""
    items = [f"flags_on={on};;;0;{total}", f"flags_not_on={total - on};;0;0;{total}"]
    for name, flag in flags.items():
        value = "U" if flag is None else f"{flag['percentage']:g}%"  # U: no value (missing)
        items.append(f"{label(name)}={value};{warn};{crit};0;100")
    return " ".join(items)


def _names(flags: Mapping[str, object]) -> str:
    return ", ".join(flags) if len(flags) <= 5 else f"all {len(flags)} flags"


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
