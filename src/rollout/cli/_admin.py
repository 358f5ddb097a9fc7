"""The operator's side of the ``rollout`` command: ``serve``, ``history`` and ``--as``.

``serve`` is one process: the store, the peer listener (``--listen`` / ``--peers``) and the HTTP
API with the dashboard (``--http``, default 127.0.0.1:8080). It refuses to listen for HTTP on a
non-loopback address without a token, or with a token of less than 128 bits of estimated
entropy: anyone who can reach the port could change every flag, or guess at the token.
``token`` prints a strong one.

Only the standard library is imported here; ``serve`` imports the admin extra (uvicorn,
starlette, ...) when it runs, so every other command stays quick to start.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

from .._client.rollout import Rollout
from .._core.history_words import event_changes
from . import _table as table
from ._serve_access import add_access_options, prepare_access, serve_access

__all__ = [
    "DEFAULT_HTTP",
    "TOKEN_ENV",
    "actor_context",
    "add_actor_options",
    "add_history",
    "add_serve_options",
    "add_token_command",
    "cmd_history",
    "cmd_serve",
    "is_loopback",
    "parse_address",
    "parse_tokens",
    "prepare_serve",
]

TOKEN_ENV = "ROLLOUT_TOKEN"
#: Keys the dashboard's CSRF tokens (else a random key per process). Sessions themselves are
#: kept by the process and end with it, whatever this says.
SESSION_SECRET_ENV = "ROLLOUT_SESSION_SECRET"
#: Host names served besides loopback ones, comma-separated (see create_app(allowed_hosts=)).
ALLOWED_HOSTS_ENV = "ROLLOUT_ALLOWED_HOSTS"
#: uvicorn's variable, but with no default: X-Forwarded-For is trusted only from what it lists.
FORWARDED_ENV = "FORWARDED_ALLOW_IPS"
#: Any of 1, true, yes, on: every change made through serve must give a reason.
REQUIRE_REASON_ENV = "ROLLOUT_REQUIRE_REASON"
DEFAULT_HTTP = "127.0.0.1:8080"
#: The name a token given without one (``--token SECRET``) is recorded under in history.
DEFAULT_TOKEN_NAME = "admin"
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

logger = logging.getLogger("rollout")


# Addresses and tokens -------------------------------------------------------------------------


def parse_address(text: str, option: str = "--http") -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` -> ``(host, port)``."""
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"{option} must be HOST:PORT (port 0 to 65535), got {text!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches only this machine: a loopback IP, or a name resolving to some."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(resolved) and all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in resolved
    )


def parse_tokens(
    values: Sequence[str], source: str = "--token", default_name: str = DEFAULT_TOKEN_NAME
) -> dict[str, str]:
    """``SECRET`` or ``NAME=SECRET`` items -> ``{name: secret}`` (a bare secret is "admin").

    A secret that itself contains ``=`` must be given with a name (``ci=abc=def``).
    """
    tokens: dict[str, str] = {}
    for value in values:
        if source.startswith("--") and any(_names_a_token(part) for part in value.split(",")[1:]):
            # $ROLLOUT_TOKEN is a comma-separated list: the same list after an option would be
            # one token whose secret holds the rest, and nobody could sign in with the others.
            listed = [part for part in value.split(",") if _names_a_token(part)]
            names = ", ".join(repr(part.strip().partition("=")[0]) for part in listed)
            raise ValueError(  # names only: a secret is not printed where logs keep it
                f"{source} takes one [NAME=]SECRET, got a comma-separated list (names {names}): "
                f"repeat {source} for each"
            )
        name, equals, secret = value.partition("=")
        named = bool(equals) and bool(_TOKEN_NAME.fullmatch(name)) and bool(secret)
        if named and secret.startswith("="):
            named = False  # base64 padding ("c2VjcmV0==") is a secret, not NAME=SECRET
        if not named:
            name, secret = default_name, value
        if not secret.strip():
            raise ValueError(f"{source}: a token must not be empty, got {value!r}")
        if name in tokens:
            raise ValueError(f"{source}: two tokens are named {name!r}; name them NAME=SECRET")
        tokens[name] = secret
    return tokens


def _names_a_token(text: str) -> bool:
    name, equals, secret = text.strip().partition("=")
    return bool(equals) and bool(_TOKEN_NAME.fullmatch(name)) and bool(secret)


def tokens_from(args_tokens: Sequence[str] | None) -> dict[str, str]:
    """``--token`` values, else ``$ROLLOUT_TOKEN`` (comma-separated), else none."""
    if args_tokens:
        return parse_tokens(args_tokens)
    env = os.environ.get(TOKEN_ENV, "")
    return parse_tokens([t.strip() for t in env.split(",") if t.strip()], f"${TOKEN_ENV}")


# serve ----------------------------------------------------------------------------------------


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="also listen for cluster peers here (with --peers: join them)",
    )
    serve.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=DEFAULT_HTTP,
        help=f"serve the HTTP API and dashboard here (default: {DEFAULT_HTTP}; port 0: any free "
        "port). A non-loopback address needs a token.",
    )
    serve.add_argument(
        "--token",
        metavar="[NAME=]SECRET",
        action="append",
        help=f"require this bearer token (repeatable; NAME is the actor in history, default "
        f"{DEFAULT_TOKEN_NAME!r}). Default: ${TOKEN_ENV}, comma-separated; prefer the variable",
    )
    add_access_options(serve)
    serve.add_argument(
        "--require-reason",
        action="store_true",
        default=None,
        help=f"refuse changes (API and dashboard) that do not say why (default: "
        f"${REQUIRE_REASON_ENV}, 1/true/yes/on)",
    )
    serve.add_argument(
        "--code-timeout",
        metavar="SECONDS",
        type=float,
        help="answer 503 to a check, explain or evaluation (OFREP too) whose group predicates "
        "or rules have not returned after this long (default: 10)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log every HTTP request (default: on)",
    )


def prepare_serve(args: argparse.Namespace) -> None:
    """Check ``serve``'s options before the store is opened (bad ones change nothing)."""
    args.http_host, args.http_port = parse_address(args.http)
    args.tokens = tokens_from(args.token)
    if args.require_reason is None:
        value = os.environ.get(REQUIRE_REASON_ENV, "").strip().lower()
        if value not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(
                f"${REQUIRE_REASON_ENV} must be 1/true/yes/on or 0/false/no/off, got {value!r}"
            )
        args.require_reason = value in ("1", "true", "yes", "on")
    timeout = args.code_timeout
    if timeout is not None and not (0 < timeout < float("inf")):
        raise ValueError(f"--code-timeout must be a positive number of seconds, got {timeout}")
    prepare_access(args, parse_tokens)
    if not args.tokens and not is_loopback(args.http_host):
        raise ValueError(
            f"--http {args.http}: not a loopback address and no token; anyone who can reach "
            f"it could change every flag. Set ${TOKEN_ENV} (or --token), or listen on "
            "127.0.0.1"
        )
    if not is_loopback(args.http_host):
        _refuse_weak_tokens(args)


def _refuse_weak_tokens(args: argparse.Namespace) -> None:
    # Anyone who can reach the address can guess at the token, throttled but forever: only a
    # space too large to search is safe there. The estimate is the cluster secret's.
    from .._core.entropy import MIN_SECRET_BITS, estimated_bits

    for name, secret in args.tokens.items():
        bits = estimated_bits(secret.encode("utf-8", "surrogateescape"))
        if bits < MIN_SECRET_BITS:
            # The value is never shown: it may be a real token used elsewhere.
            raise ValueError(
                f"--http {args.http}: the token named {name!r} (--token or ${TOKEN_ENV}) is too "
                f"weak for a non-loopback address: about {bits:.0f} bits of entropy, at least "
                f"{MIN_SECRET_BITS} are required; make one with `rollout token`"
            )


def add_token_command(commands: Any) -> None:
    """``rollout token``: print a fresh bearer token for ``serve`` (no store, no network)."""
    help_text = "print a new random token for rollout serve's --token / $ROLLOUT_TOKEN (256 bits)"
    sub = commands.add_parser("token", help=help_text, description=help_text)
    sub.set_defaults(standalone=_cmd_token)


def _cmd_token(_args: argparse.Namespace) -> int:
    import secrets

    # 32 random bytes, URL-safe base64: no "=" (so never read as NAME=SECRET), no "," (the
    # separator of $ROLLOUT_TOKEN), nothing a shell or an Authorization header minds.
    print(secrets.token_urlsafe(32))
    return 0


def cmd_serve(flags: Rollout, args: argparse.Namespace) -> int:
    """Serve the HTTP API and dashboard (and the peer listener) until SIGINT or SIGTERM."""
    try:
        from ..admin import _serve
        from ..sqlite import _watch
    except ImportError as exc:
        raise ValueError(
            f"rollout serve needs the admin extra: pip install 'rollout[admin]' ({exc})"
        ) from None
    sock = _serve.bind(args.http_host, args.http_port)
    stats = flags.stats()
    sync = stats["sync"] or {}
    logger.info("node %s serving %s", stats["node"], stats["store"])
    if sync.get("address"):
        # First line, as before serve had HTTP: scripts wait for it to know the node is up.
        print(f"rollout node {stats['node']} listening on {sync['address']}", flush=True)
    url = _serve.url_of(sock)
    if not args.tokens:
        logger.warning("no token: anyone who can reach %s can change flags", url)

    def ready() -> None:
        print(f"Dashboard: {url}", flush=True)

    # The CLI writing to the same SQLite file meanwhile: its changes reach the dashboards.
    with _watch.watching(flags.refresh, _watch.sqlite_path(stats["store"])):
        return _serve.serve(
            flags,
            sock,
            tokens=args.tokens,
            session_secret=os.environ.get(SESSION_SECRET_ENV) or None,
            allowed_hosts=[
                h.strip() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip()
            ],
            access_log=args.access_log,
            on_ready=ready,
            forwarded_allow_ips=os.environ.get(FORWARDED_ENV) or None,
            require_reason=args.require_reason,
            code_timeout=args.code_timeout,
            **serve_access(args),
        )


# --as and history -----------------------------------------------------------------------------


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no user database entry (some containers)
        return None


def add_actor_options(write: argparse.ArgumentParser) -> None:
    write.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        default=_login_name(),
        help="who makes the change, in the flag's history (default: your login name)",
    )
    write.add_argument("--reason", metavar="TEXT", help="why, in the flag's history")


def actor_context(
    flags: Rollout, args: argparse.Namespace
) -> contextlib.AbstractContextManager[None]:
    """Writes inside are recorded as made by ``--as`` (for ``--reason``), if the command has it."""
    if not hasattr(args, "actor"):
        return contextlib.nullcontext()
    return flags.with_context(user=args.actor or None, reason=args.reason or None)


def cmd_history(flags: Rollout, args: argparse.Namespace) -> int:
    events = flags.history(args.name, args.limit)
    if not events and not flags.exists(args.name):
        raise ValueError(f"no flag named {args.name!r} and no history for it")
    if args.json:
        print(json.dumps([event.to_dict() for event in events], indent=2))
        return 0
    if not events:
        print(f"{args.name}: no recorded changes")
        return 0
    rows = [
        [
            e.to_dict()["at"],
            e.node,
            e.actor or "-",
            e.action,
            ", ".join(event_changes(e.before, e.after)),
            e.reason or "",
        ]
        for e in events
    ]
    print(table.format_table(["WHEN (UTC)", "NODE", "ACTOR", "ACTION", "CHANGE", "REASON"], rows))
    return 0


Handler = Callable[[Rollout, argparse.Namespace], int]
AddCommand = Callable[[str, str, Handler], argparse.ArgumentParser]


def add_history(add: AddCommand) -> None:
    history = add("history", "show a flag's recorded changes, newest first", cmd_history)
    history.add_argument("name", metavar="NAME", help="flag name (deleted flags too)")
    history.add_argument("--limit", metavar="N", type=int, help="at most N events")
