"""One node of ``bench.cluster``: a process driven over stdin/stdout, one JSON object a line.

Like ``rollout.testing.cluster`` but built for timing, so every time is taken where it happens:

- ``write I``: the writer takes ``time.monotonic_ns()`` right after ``activate(f"f{I}")``
  returns (peer and redis-store modes) or right before its ``PUBLISH`` (redis mode, where the
  time travels in the message) and answers with it;
- ``write_span I``: the same ``activate``, answered with the times just before it was called
  and right after it returned;
- receivers take ``time.monotonic_ns()`` when their subscriber first sees that flag active (or
  when the pub/sub message arrives) and keep it; ``seen I T`` answers with it, waiting up to
  ``T`` seconds for it (null: not seen in time).

The bench's own process must not run while a change spreads: on a machine of 2 CPUs, waking it
(and its reader threads) then takes a CPU from a receiver. So the writer answers ``write`` only
``QUIET_S`` after the change left (the times it answers with are taken before that), and
receivers print nothing as changes arrive: the bench asks them once the writer has answered.
Every fan-out measured here, rollout's and the Redis and PostgreSQL references, is timed alike.

CLOCK_MONOTONIC is one clock for the whole machine on Linux, so times compare across processes.

Modes (``--mode``):

- ``peer``: a ``Rollout`` replicating with ``--peers`` over TCP (``--listen``);
- ``alone``: the same ``Rollout`` with no transport (the baseline for memory use);
- ``redis-store``: a ``Rollout`` on a Redis store (``--store redis://...?namespace=NS``) with
  its default transport, Redis pub/sub: no ``--listen``/``--peers`` (``bench.redis_bench``);
- ``store``: the same with any store and its default transport (``bench.postgres_bench``);
- ``redis``: no ``Rollout``; a redis-py pub/sub subscriber thread and a publisher.

``--catch-up N``: report (as an event) when this node first holds ``N`` flags, with the times at
which the process started, the ``Rollout`` was built and the first peer connected.
"""

from __future__ import annotations

import time

STARTED_NS = time.monotonic_ns()  # before the imports: "process start", as near as we can get

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

_OUT = threading.Lock()  # answers (main thread) and events (replication thread) share stdout

#: How long a writer waits after a change before it answers the bench (see above): longer than
#: a fan-out takes but for its tail (10 and 30 nodes: a few ms).
QUIET_S = 0.005


def emit(payload: dict[str, Any]) -> None:
    line = json.dumps(payload) + "\n"
    with _OUT:
        sys.stdout.write(line)
        sys.stdout.flush()


class Arrivals:
    """When this process first saw each change, kept until the bench asks (``seen``)."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._changed = threading.Condition()

    def record(self, change: int, ns: int) -> None:
        with self._changed:
            self._seen.setdefault(change, ns)
            self._changed.notify_all()

    def wait(self, change: int, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: change in self._seen, timeout)
            return self._seen.pop(change, None)


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RolloutNode:
    """``peer``, ``alone``, ``redis-store`` and ``store`` modes."""

    def __init__(self, options: argparse.Namespace) -> None:
        from rollout import Rollout

        replicate = options.mode == "peer"
        self.flags = Rollout(
            options.store,
            listen=options.listen if replicate else None,
            peers=[p for p in options.peers.split(",") if p] if replicate else (),
            secret=options.secret if replicate else None,
        )
        self.built_ns = time.monotonic_ns()
        self.mine: set[str] = set()
        self.seen: set[str] = set()
        self.arrivals = Arrivals()
        self.catch_up: int = options.catch_up
        self.connected_ns: int | None = None
        self.synced_ns: int | None = None
        self.flags.subscribe(self._changed)
        self._synced_thread: threading.Thread | None = None
        if self.catch_up:
            threading.Thread(target=self._watch_connect, daemon=True).start()
            self._synced_thread = threading.Thread(target=self._wait_synced, daemon=True)
            self._synced_thread.start()

    def _changed(self, changed: set[str]) -> None:
        now = time.monotonic_ns()
        if self.catch_up:
            if self.flags.stats()["flags"] >= self.catch_up:
                self.catch_up = 0
                emit(
                    {
                        "caught_up": now,
                        "started": STARTED_NS,
                        "built": self.built_ns,
                        "connected": self.connected_ns,
                    }
                )
            return
        active = self.flags.active
        for name in changed:
            if name not in self.seen and name not in self.mine and active(name):
                self.seen.add(name)
                self.arrivals.record(int(name[1:]), now)

    def _watch_connect(self) -> None:
        # Polled, not hooked: a node learns of a connection only inside the transport.
        while self.connected_ns is None and self.catch_up:
            sync = self.flags.stats()["sync"] or {}
            if sync.get("peers_connected"):
                self.connected_ns = time.monotonic_ns()
                return
            time.sleep(0.0005)

    def _wait_synced(self) -> None:
        if self.flags.wait_synced(60.0):
            self.synced_ns = time.monotonic_ns()

    def run(self, op: str, args: list[Any]) -> Any:
        flags = self.flags
        if op == "synced_at":  # when wait_synced(), called right after Rollout(), returned
            if self._synced_thread is None:
                raise ValueError("synced_at is for a node started with --catch-up")
            self._synced_thread.join(args[0])
            if self.synced_ns is None:
                raise TimeoutError(f"wait_synced() did not return True within {args[0]} s")
            return self.synced_ns
        if op == "write":
            name = f"f{args[0]}"
            self.mine.add(name)
            flags.activate(name)
            written = time.monotonic_ns()
            time.sleep(QUIET_S)
            return written
        if op == "write_span":  # [just before activate(), right after it returned]
            name = f"f{args[0]}"
            self.mine.add(name)
            before = time.monotonic_ns()
            flags.activate(name)
            written = time.monotonic_ns()
            time.sleep(QUIET_S)
            return [before, written]
        if op == "seen":
            return self.arrivals.wait(args[0], args[1])
        if op == "fill":  # flags fill0..fillN-1, each with a few users and some data
            for i in range(args[0]):
                name = f"fill{i}"
                flags.activate_users(name, [i, i + 1, i + 2])
            for i in range(0, args[0], 10):
                flags.set_feature_data(f"fill{i}", {"owner": "team-a"})
            return flags.stats()["flags"]
        if op == "connected":
            sync = flags.stats()["sync"]
            if sync is None:
                return 0
            # A node with peers writes once a peer confirmed its clock: not connected before.
            if sync.get("clock", {}).get("state") == "unconfirmed":
                return 0
            return sync["peers_connected"]
        if op == "wait_synced":
            return flags.wait_synced(args[0])
        if op == "count":
            return flags.stats()["flags"]
        if op == "stats":
            return flags.stats()
        raise ValueError(f"unknown op {op!r}")

    def close(self) -> None:
        self.flags.close()


class RedisNode:
    """``redis`` mode: plain redis-py pub/sub, the reference for one PUBLISH to N subscribers."""

    def __init__(self, options: argparse.Namespace) -> None:
        import redis

        self.channel = options.channel
        self.me = options.listen  # only an identity here
        self.client = redis.Redis.from_url(options.redis)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(self.channel)
        confirmed = self.pubsub.get_message(timeout=10)  # the subscribe confirmation
        if confirmed is None:
            raise RuntimeError("no subscribe confirmation from Redis")
        self.arrivals = Arrivals()
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for message in self.pubsub.listen():  # type: ignore[no-untyped-call]
            now = time.monotonic_ns()
            if message["type"] != "message":
                continue
            index, _sent_ns, sender = message["data"].decode().split()
            if sender != self.me:
                self.arrivals.record(int(index), now)

    def run(self, op: str, args: list[Any]) -> Any:
        if op == "write":
            sent = time.monotonic_ns()
            self.client.publish(self.channel, f"{args[0]} {sent} {self.me}")
            time.sleep(QUIET_S)
            return sent
        if op == "seen":
            return self.arrivals.wait(args[0], args[1])
        if op == "connected":
            return 1
        raise ValueError(f"unknown op {op!r}")

    def close(self) -> None:
        self.client.close()


def _serve(node: RolloutNode | RedisNode, stop_profile: Callable[[], None]) -> None:
    for line in sys.stdin:
        command = json.loads(line)
        op, args = command["op"], command["args"]
        if op == "exit":
            break
        try:
            if op == "rss":
                gc.collect()
                result: Any = _rss_mb()
            else:
                result = node.run(op, args)
        except Exception as exc:  # reported to the benchmark, which decides
            emit({"error": type(exc).__name__, "message": str(exc)})
            continue
        emit({"ok": result})
    stop_profile()
    node.close()
    emit({"ok": None})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_child")
    parser.add_argument(
        "--mode", choices=("peer", "alone", "redis", "redis-store", "store"), required=True
    )
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--listen", default="")
    parser.add_argument("--peers", default="")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--catch-up", type=int, default=0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", default="rollout-bench")
    parser.add_argument("--profile", default="", help="cProfile the replication thread to PATH")
    options = parser.parse_args(argv)
    node: RolloutNode | RedisNode
    node = RedisNode(options) if options.mode == "redis" else RolloutNode(options)
    stop_profile = _nothing
    if options.profile and isinstance(node, RolloutNode):
        stop_profile = _profile_replication(node, options.profile)
    emit({"ready": os.getpid()})
    _serve(node, stop_profile)


def _nothing() -> None:
    pass


def _profile_replication(node: RolloutNode, path: str) -> Callable[[], None]:
    """cProfile the replication thread (a profiler hooks one thread: enable it on that one)."""
    import cProfile

    loop = node.flags._transport._loop.loop  # type: ignore[union-attr]  # a bench-only peek
    profiler = cProfile.Profile()

    def on_loop(action: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        loop.call_soon_threadsafe(run)
        done.wait(5)

    on_loop(profiler.enable)

    def stop() -> None:
        on_loop(profiler.disable)
        profiler.dump_stats(path)

    return stop


if __name__ == "__main__":
    main(sys.argv[1:])
