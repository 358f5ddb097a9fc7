"""The cluster side of the ``rollout`` command: ``members``, ``--peers``, ``serve``'s logging.

With ``--peers`` any command joins the cluster for its duration: it first syncs with at least one
peer (so ``list`` shows the cluster's flags) and waits until its clock has been judged by its peers
(a node with peers writes only once a peer confirmed its clock), makes its change, and waits until
at least one peer has it before it exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from .._client.rollout import Rollout
from .._core.redact import redact_url, scrub, secrets_of
from . import _api_client as api
from . import _table as table
from ._admin import is_loopback, parse_address
from ._progress import Progress

__all__ = [
    "PEERS_ENV",
    "SECRET_ENV",
    "add_cluster_options",
    "add_members",
    "add_secret_command",
    "add_timeout_option",
    "cluster_options",
    "cmd_members",
    "join",
    "leave",
    "refuse_an_open_listen",
    "seconds",
]

PEERS_ENV = "ROLLOUT_PEERS"
SECRET_ENV = "ROLLOUT_SECRET"
SYNC_TIMEOUT = 10.0
#: The longest --timeout (a day): more reaches the socket as an OverflowError.
MAX_TIMEOUT = 86400


def add_cluster_options(
    parser: argparse.ArgumentParser, *, suppress: bool, insecure: bool = True
) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--peers",
        metavar="HOST:PORT,...",
        default=default,
        help=f"join these cluster nodes (default: ${PEERS_ENV})",
    )
    parser.add_argument(
        "--secret",
        metavar="SECRET",
        default=default,
        help=f"the cluster's shared secret (default: ${SECRET_ENV}; prefer the variable)",
    )
    if insecure:  # only serve listens
        parser.add_argument(
            "--insecure",
            action="store_true",
            default=argparse.SUPPRESS if suppress else False,
            help="allow listening on a non-loopback address without a secret",
        )


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds, at most a day."""
    value = float(text)  # its ValueError becomes "invalid seconds value: 'x'", naming the option
    if not 0 < value <= MAX_TIMEOUT:
        raise ValueError(text)
    return value


seconds.__name__ = "seconds"


def add_timeout_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        default=SYNC_TIMEOUT,
        help=f"with --peers: seconds to wait for them ({SYNC_TIMEOUT:g}; at most {MAX_TIMEOUT})",
    )


def add_secret_command(commands: Any) -> None:
    """``rollout secret``: print a fresh secret for a cluster (no store, no network)."""
    help_text = "print a new random secret for --secret / $ROLLOUT_SECRET (256 bits)"
    sub = commands.add_parser("secret", help=help_text, description=help_text)
    sub.set_defaults(standalone=_cmd_secret)


def _cmd_secret(_args: argparse.Namespace) -> int:
    from ..peer._secret import new_secret

    print(new_secret())
    return 0


def cluster_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for Rollout from the command line and the environment."""
    peers_text = args.peers or os.environ.get(PEERS_ENV) or ""
    peers = [p.strip() for p in peers_text.split(",") if p.strip()]
    listen = getattr(args, "listen", None)
    if not peers and listen is None:
        return {}
    return {
        "listen": listen,
        "peers": peers,
        "secret": args.secret or os.environ.get(SECRET_ENV) or None,
        "insecure": args.insecure,
    }


def refuse_an_open_listen(args: argparse.Namespace) -> None:
    """Refuse ``--listen`` on a non-loopback address without a secret, before anything opens.

    The transport refuses it too, but words its remedy for Python (``secret=...``,
    ``insecure=True``): on the command line the remedy is an option or a variable."""
    listen = getattr(args, "listen", None)
    if listen is None or args.insecure or args.secret or os.environ.get(SECRET_ENV):
        return
    host, _ = parse_address(listen, "--listen")
    if not is_loopback(host):
        raise ValueError(
            f"--listen {listen}: not a loopback address and no cluster secret; anyone who can "
            f"reach it could change every flag. Set ${SECRET_ENV} (or --secret) to the cluster's "
            "secret (`rollout secret` makes one), or pass --insecure on a network you trust"
        )


def join(flags: Rollout, args: argparse.Namespace) -> None:
    """Before the command: hold the cluster's state, from at least one peer."""
    peers = cluster_options(args).get("peers")
    if not peers:
        return
    timeout = _timeout(args)
    progress = Progress("waiting for peers")
    try:
        if not _synced_with_one(flags, peers, timeout, progress):
            raise ConnectionError(
                f"no peer answered within {timeout:g} s; not reached: {', '.join(peers)} "
                "(is `rollout serve --listen` running there? a longer --timeout?)"
            )
        _wait_clock_judged(flags, timeout)
    finally:
        progress.end()


def _timeout(args: argparse.Namespace) -> float:
    # members and quarantine share --timeout with --url (it may be absent: a parser of a test).
    timeout: float | None = getattr(args, "timeout", None)
    if timeout is None:
        return SYNC_TIMEOUT
    if not 0 < timeout <= MAX_TIMEOUT:  # members' --timeout is checked only with --url
        raise ValueError(
            f"--timeout must be a positive number of seconds, at most {MAX_TIMEOUT}, "
            f"got {timeout:g}"
        )
    return timeout


def _wait_clock_judged(flags: Rollout, timeout: float) -> None:
    # The first digest with a peer's clock follows the exchange above by a moment. A verdict
    # that refuses writes (an outlier, no majority) is not waited out: the write reports it.
    deadline = time.monotonic() + timeout
    while _clock(flags).get("state") == "unconfirmed" and time.monotonic() < deadline:
        time.sleep(0.02)


def _clock(flags: Rollout) -> dict[str, Any]:
    clock: dict[str, Any] = (flags.stats()["sync"] or {}).get("clock") or {}
    return clock


def leave(flags: Rollout, args: argparse.Namespace) -> None:
    """After a write: until at least one peer holds it (it is already in the local store)."""
    peers = cluster_options(args).get("peers")
    if not peers:
        return
    timeout = _timeout(args)
    progress = Progress("waiting for a peer to confirm the change")
    try:
        if not _synced_with_one(flags, peers, timeout, progress):
            raise ConnectionError(
                f"the change is stored locally, but no peer confirmed it within {timeout:g} s; "
                f"not reached: {', '.join(peers)}"
            )
    finally:
        progress.end()


#: How often the wait looks at the peers (and rewrites the progress line).
_STEP = 0.25


def _synced_with_one(flags: Rollout, peers: list[str], timeout: float, progress: Progress) -> bool:
    # In short steps, so a wrong secret is reported at once rather than after the timeout.
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if flags.wait_synced(max(min(_STEP, remaining), 0.0), peers=1):
            return True
        sync = flags.stats()["sync"] or {}
        if sync.get("frames_rejected_auth") and not sync.get("peers_connected"):
            raise PermissionError(
                "the peers did not accept this secret (set --secret or $ROLLOUT_SECRET to the "
                "cluster's secret)"
            )
        if remaining <= _STEP:
            return False
        synced = sum(1 for peer in peers if (sync.get("last_sync") or {}).get(peer) is not None)
        progress.show(
            f"{synced} of {len(peers)} synced, {max(remaining - _STEP, 0):.0f} s left "
            f"(--timeout {timeout:g})"
        )


def add_members(add: Any) -> None:
    """``rollout members``: through ``--peers`` (this command joins as a node) or ``--url``."""
    command = add(
        "members",
        "list the cluster nodes known through --peers, or by a running node (--url)",
        cmd_members,
    )
    api.add_url_options(command, remote_members)


def cmd_members(flags: Rollout, args: argparse.Namespace) -> int:
    members = flags.members()
    if args.json:
        print(json.dumps(members, indent=2))
        return 0
    _print_members(members)
    # Offsets and verdict here are this command's own: it joined the cluster as a node of its
    # own for a moment, so they describe this machine's clock, not any node's.
    print("\nCLOCK OFFSET and AGREES: each node's clock against this command's own clock")
    clock = _clock(flags)
    if clock:
        print(f"this command's own clock, as those nodes judge it: {_verdict(clock)}")
    print("a node's verdict on its own clock: `rollout members --url http://HOST:PORT` (its API)")
    return 0


def remote_members(args: argparse.Namespace) -> int:
    """``rollout members --url URL``: the members as that node sees them, and its own verdict."""
    answer = api.call_api(args, "GET", "/members")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    node = answer["node"]
    _print_members(answer["members"])
    print(f"\nCLOCK OFFSET and AGREES: each node's clock against node {node}'s")
    clock = answer.get("clock")
    verdict = _verdict(clock) if clock else "not judged (no peers)"
    print(f"node {node}'s clock, as its peers judge it: {verdict}")
    held = answer.get("quarantined") or 0
    if held:
        print(
            f"node {node} holds {held} quarantined register{'s' * (held != 1)}: "
            f"`rollout quarantine --url {redact_url(args.url)}`"
        )
    return 0


def _print_members(members: list[dict[str, Any]]) -> None:
    agrees = {True: "yes", False: "NO", None: "-"}
    rows = [
        [
            m["address"],
            m["node"] or "-",
            m["state"],
            "-" if m.get("clock_offset_ms") is None else f"{m['clock_offset_ms']:+d} ms",
            agrees[m.get("clock_agrees")],
            "yes" if m.get("seed") else "",
        ]
        for m in members
    ]
    headers = ["ADDRESS", "NODE", "STATE", "CLOCK OFFSET", "AGREES", "SEED"]
    print(table.format_table(headers, rows))


def _verdict(clock: dict[str, Any]) -> str:
    why = clock["problem"] or (
        f"agrees with {clock['agreeing']} of {clock['voters']} nodes (itself included; "
        f"max_offset {clock['max_offset_ms']} ms)"
    )
    return f"{clock['state']}: {why}"


def configure_logging(command: str, urls: Sequence[str | None] = ()) -> None:
    """A node logs its membership; a one-off command reports in one line, not log noise.

    Every line logged is scrubbed of the secrets of ``urls`` (the store URL and such): the
    library redacts the URLs it prints, but a line of redis-py's or uvicorn's, or a traceback,
    may still quote one.
    """
    if command == "serve":
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        for handler in logging.getLogger().handlers:
            handler.addFilter(_Scrubbing(urls))
    else:
        logging.getLogger("rollout").setLevel(logging.CRITICAL)


class _Scrubbing(logging.Filter):
    """Masks the secrets of some URLs in a record's message and traceback."""

    def __init__(self, urls: Sequence[str | None]) -> None:
        super().__init__()
        self._urls = [url for url in urls if url and secrets_of(url)]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._urls:
            return True
        message = record.getMessage()
        clean = scrub(message, *self._urls)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here, once, so the handler's formatter prints the scrubbed text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, *self._urls)
        return True
