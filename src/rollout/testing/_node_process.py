"""One node of a test cluster, as a process: a ``Rollout`` with a peer transport, driven over
stdin/stdout with one JSON object per line (the other side is :class:`rollout.testing.cluster.Node`,
whose docstring lists the commands).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..stores import Store

__all__ = ["main"]


def _serve(options: argparse.Namespace, store: Store | None = None) -> int:
    import logging

    from .. import Rollout
    from .._core.clock import system_clock_ms
    from ..peer._transport import PeerTransport

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _raise_open_file_limit()
    # A list, so `set_clock_offset` can step the running node's clock (as NTP would).
    offset = [options.clock_offset_ms]
    peers = [p for p in options.peers.split(",") if p]
    transport: PeerTransport | str | None = options.transport or None  # a URL: nats://...
    if options.listen or peers:
        transport = PeerTransport(
            listen=options.listen or None,
            peers=peers,
            secret=options.secret,
            learn_members=options.learn_members,
            anti_entropy_interval=options.anti_entropy_interval,
            member_timeout=options.member_timeout,
        )
    flags = Rollout(
        options.store if store is None else store,
        clock=lambda: system_clock_ms() + offset[0],
        transport=transport,
        **({"max_offset": options.max_offset} if options.max_offset is not None else {}),
    )
    seen: dict[str, int] = {}

    def watch(changed: set[str]) -> None:
        now = time.monotonic_ns()
        for name in changed:
            if name not in seen and flags.active(name):
                seen[name] = now

    flags.subscribe(watch)
    stats = flags.stats()
    address = (stats["sync"] or {}).get("address")
    _answer({"ready": {"address": address, "node": stats["node"]}})
    for line in sys.stdin:
        command = json.loads(line)
        op, args, kwargs = command["op"], command["args"], command["kwargs"]
        try:
            if op == "set_clock_offset":
                offset[0] = int(args[0])
                result = None
            else:
                result = _run(flags, seen, op, args, kwargs)
        except Exception as exc:  # reported to the test, which decides
            _answer({"error": type(exc).__name__, "message": str(exc)})
            continue
        _answer({"ok": result})
        if op == "exit":
            return 0
    flags.close()
    return 0


def _raise_open_file_limit() -> None:
    """Up to the hard limit: tests open a thousand connections to a node on purpose."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run(flags: Any, seen: dict[str, int], op: str, args: list[Any], kwargs: Any) -> Any:
    if op == "exit":
        flags.close()
        return None
    if op == "get":
        return flags.get(*args).to_dict()
    if op == "state":
        return {name: flags.get(name).to_dict() for name in flags.features()}
    if op == "export":
        return flags.export().decode()
    if op == "merge":
        return sorted(flags.merge(args[0].encode()))
    if op == "history":
        return [event.to_dict() for event in flags.history(*args)]
    if op == "quarantined":
        return [entry.to_dict() for entry in flags.quarantined(*args)]
    if op == "seen":
        return seen.get(args[0])
    if not op.startswith("_") and callable(getattr(flags, op, None)):
        result = getattr(flags, op)(*args, **kwargs)
        return sorted(result) if isinstance(result, set) else result
    raise ValueError(f"unknown op {op!r}")


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None, *, store: Store | None = None) -> int:
    """Run one node; ``store``: a store of the caller's (a test's), used instead of opening
    the one ``--store`` names."""
    parser = argparse.ArgumentParser(prog="python -m rollout.testing._node_process")
    parser.add_argument("--store", required=True)
    parser.add_argument("--listen", default="")
    parser.add_argument("--peers", default="")
    parser.add_argument("--transport", default="")
    parser.add_argument("--secret", default=None)
    parser.add_argument("--no-learn-members", dest="learn_members", action="store_false")
    parser.add_argument("--clock-offset-ms", type=int, default=0)
    parser.add_argument("--anti-entropy-interval", type=float, default=1.0)
    parser.add_argument("--max-offset", type=float, default=None)
    parser.add_argument("--member-timeout", type=float, default=60.0)
    return _serve(parser.parse_args(argv), store)


if __name__ == "__main__":
    sys.exit(main())
