"""Cluster: how fast a change reaches the other nodes, how fast a new node catches up, idle cost.

Every node is a real process (``bench.cluster_child``) on this machine, replicating over
loopback TCP with a shared secret, the default anti-entropy interval (1 s), and a memory or an
SQLite store. Times are ``time.monotonic_ns()`` taken inside the nodes (one clock for the whole
machine on Linux), so no pipe to this process is ever inside a measured interval; nor does
this process run during one (the writer answers it after a quiet spell and the receivers keep
their times until asked: on 2 CPUs, its wake-ups took a CPU from a receiver):

- fan-out latency: a writer (a different node for every change) takes its time right after
  ``activate()`` returns; every other node takes its own when its subscriber first sees the
  flag active (the moment ``active()`` turns true there; the writer committed the change
  before sending it, and a receiver commits a peer's change right after showing it:
  docs/architecture.md, "A peer's delta"). The writer sends the change from inside
  ``activate()`` (rollout/peer/_sender.py), so the same samples are also taken from just
  before ``activate()`` was called: that one counts the writer's whole path;
- the Redis reference: the same number of processes, each subscribed to one channel with
  redis-py's plain pub/sub; a writer puts its time in the message just before ``PUBLISH``, the
  others take theirs when the message arrives: the raw cost of one PUBLISH reaching N-1
  subscribers, with no flag state at all;
- catch-up: a fresh node (SQLite store) listing one peer of a 3-node cluster holding 1,000 flags
  times its own start, first connection, and the moment it holds all 1,000 flags;
- idle: CPU of every node of that 4-node cluster over 10 s with nothing written, and the RSS of
  the node that wrote the 1,000 flags against a process that wrote the same flags without
  replication (the difference is what replication adds: its thread, asyncio, sockets, buffers).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rollout.testing.cluster import free_port

from .cluster_child import QUIET_S

__all__ = [
    "CatchUp",
    "ClusterResults",
    "Idle",
    "Latency",
    "LatencyRun",
    "measure_cluster",
]

_ROOT = Path(__file__).resolve().parent.parent  # where ``python -m bench...`` can import bench

#: Changes measured per run (after WARMUP unmeasured ones), as the issue asks.
CHANGES = 200
WARMUP = 10
#: A pause after every change has arrived everywhere, so changes do not queue behind each other.
GAP_S = 0.005
#: A change not seen by a node within this long counts as lost there.
LOST_AFTER_S = 2.0
CATCH_UP_FLAGS = 1_000
IDLE_S = 10.0
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: One strong secret for every node of a run; passed as ``--secret=...`` (it may start with "-").
SECRET = secrets.token_urlsafe(32)

#: How every fan-out here is timed, for the notes of its tables (bench.cluster_child).
QUIET_NOTE = (
    "The bench's own process sleeps while a change spreads: the writer answers it "
    f"{QUIET_S * 1000:.0f} ms after the change left (with times taken before that) and "
    "receivers keep theirs until asked, so it takes no CPU from a receiver; every fan-out, "
    "rollout's and the reference's, is timed alike."
)

#: (nodes, store) runs, in order; the Redis reference runs once per node count.
RUNS: tuple[tuple[int, str], ...] = ((3, "memory"), (3, "sqlite"), (10, "memory"), (10, "sqlite"))


@dataclass(frozen=True)
class Latency:
    samples: int  # (change, receiver) pairs that arrived
    lost: int  # pairs that did not arrive within LOST_AFTER_S
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class LatencyRun:
    nodes: int
    store: str
    rollout: Latency  # from activate() returning on the writer
    redis: Latency | None  # None when no Redis could be reached
    from_call: Latency | None = None  # from just before activate() was called


@dataclass(frozen=True)
class CatchUp:
    flags: int
    start_s: float  # process start (before imports) -> holds every flag
    built_s: float  # Rollout() returned (listening, dialing) -> holds every flag
    connected_s: float | None  # first peer connected -> holds every flag
    synced_s: float  # process start -> wait_synced() returned True


@dataclass(frozen=True)
class Idle:
    seconds: float
    cpu_percent: list[float]  # per node, of one CPU
    rss_mb: float  # the node that wrote the flags, with replication
    alone_rss_mb: float  # the same writes in a process without replication


@dataclass(frozen=True)
class ClusterResults:
    latency: list[LatencyRun]
    catch_up: CatchUp
    idle: Idle
    redis_failure: str | None  # why there is no Redis column
    load_average: float  # the machine's 1-minute load average when the section started


def measure_cluster() -> ClusterResults:
    load_average = os.getloadavg()[0]  # other work on the machine shows up in every figure
    redis_failure = _redis_problem()
    runs: list[LatencyRun] = []
    redis: dict[int, Latency] = {}
    with tempfile.TemporaryDirectory(prefix="rollout-bench-cluster-") as tmp:
        directory = Path(tmp)
        for nodes, store in RUNS:
            if redis_failure is None and nodes not in redis:
                _progress(f"cluster: Redis pub/sub fan-out to {nodes - 1} subscribers")
                with _redis_group(nodes, directory) as (children, _):
                    redis[nodes] = _fan_out(children)
            _progress(f"cluster: {nodes} nodes, {store} stores")
            with _peer_group(nodes, store, directory) as (children, _):
                latency, from_call = _fan_out_timed(children, span=True)
            runs.append(LatencyRun(nodes, store, latency, redis.get(nodes), from_call))
        _progress(f"cluster: catch-up to {CATCH_UP_FLAGS:,} flags, then {IDLE_S:.0f} s idle")
        catch_up, idle = _catch_up_and_idle(directory)
    return ClusterResults(runs, catch_up, idle, redis_failure, load_average)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Node processes -------------------------------------------------------------------------------

Events = queue.Queue[tuple[int, dict[str, Any]]]


class _Child:
    """One ``bench.cluster_child`` process: answers go to its queue, events to a shared one."""

    def __init__(
        self, index: int, arguments: Sequence[str], events: Events, directory: Path
    ) -> None:
        self.index = index
        self.address = ""
        self.log_path = directory / f"node{index}-{time.monotonic_ns()}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.cluster_child", f"--secret={SECRET}", *arguments],
                cwd=_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self._reader.start()

    def _read(self, events: Events) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "caught_up" in message:
                events.put((self.index, message))
            else:
                self._answers.put(message)
        self._answers.put(None)

    def answer(self, timeout: float) -> dict[str, Any]:
        try:
            message = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"node {self.index} did not answer within {timeout} s") from None
        if message is None:
            log = self.log_path.read_text()[-2000:]
            raise RuntimeError(f"node {self.index} exited; its log ends:\n{log}")
        if "error" in message:
            raise RuntimeError(f"node {self.index}: {message['error']}: {message['message']}")
        return message

    def call(self, op: str, *args: Any, timeout: float = 30.0) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.process.stdin.flush()
        return self.answer(timeout)["ok"]

    def close(self) -> None:
        process = self.process
        if process.poll() is None:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                self.call("exit", timeout=10)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._reader.join(timeout=5)  # it ends at the end of the output, before that is closed
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


Group = tuple[list[_Child], Events]


@contextlib.contextmanager
def _group(arguments: Sequence[Sequence[str]], directory: Path) -> Iterator[Group]:
    """Start one child per argument list (all at once), wait until each is ready; always stop."""
    events: Events = queue.Queue()
    children: list[_Child] = []
    try:
        for index, child_arguments in enumerate(arguments):
            children.append(_Child(index, child_arguments, events, directory))
        for child in children:
            child.answer(timeout=60)  # {"ready": pid}
        yield children, events
    finally:
        for child in children:
            child.close()


@contextlib.contextmanager
def _peer_group(size: int, store: str, directory: Path) -> Iterator[Group]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(size)]
    stamp = time.monotonic_ns()  # a fresh SQLite file for every group
    arguments = [
        [
            "--mode", "peer", "--listen", address,
            "--peers", ",".join(a for a in addresses if a != address),
            "--store", _store_url(store, directory / f"n{i}-{stamp}.db"), f"--secret={SECRET}",
            *_profile_arguments(f"{size}-{store}-n{i}"),
        ]
        for i, address in enumerate(addresses)
    ]  # fmt: skip
    with _group(arguments, directory) as (children, events):
        for child, address in zip(children, addresses, strict=True):
            child.address = address
        _wait_connected(children)
        yield children, events


def _profile_arguments(name: str) -> list[str]:
    """``BENCH_CLUSTER_PROFILE=DIR``: every node dumps cProfile stats of its replication."""
    target = os.environ.get("BENCH_CLUSTER_PROFILE")
    if not target:
        return []
    Path(target).mkdir(parents=True, exist_ok=True)
    return ["--profile", str(Path(target) / f"{name}.prof")]


def _store_url(store: str, path: Path) -> str:
    return "memory://" if store == "memory" else f"sqlite:///{path}"


def _wait_connected(children: Sequence[_Child], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending:
        pending = [c for c in pending if c.call("connected") < len(children) - 1]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"nodes {[c.index for c in pending]} did not connect to every peer")
        if pending:
            time.sleep(0.05)
    for child in children:
        if not child.call("wait_synced", 10.0):
            raise TimeoutError(f"node {child.index} did not sync with its peers")


@contextlib.contextmanager
def _redis_group(size: int, directory: Path) -> Iterator[Group]:
    channel = f"rollout-bench-{os.getpid()}-{time.monotonic_ns()}"
    arguments = [
        ["--mode", "redis", "--redis", REDIS_URL, "--channel", channel, "--listen", f"r{i}"]
        for i in range(size)
    ]
    with _group(arguments, directory) as group:
        yield group


def _redis_problem() -> str | None:
    """Why Redis cannot be used for the reference column, or None if it can."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis at {REDIS_URL}: {exc}"
    finally:
        client.close()
    return None


# Fan-out latency ------------------------------------------------------------------------------


def _fan_out(children: Sequence[_Child]) -> Latency:
    """WARMUP + CHANGES changes, each from the next node in turn; latency to every other node."""
    return _fan_out_timed(children, span=False)[0]


def _fan_out_timed(children: Sequence[_Child], *, span: bool) -> tuple[Latency, Latency | None]:
    """``_fan_out``'s latency from ``activate()`` returning, and with ``span`` (Rollout nodes
    only) the same samples from just before it was called."""
    returned: list[int] = []
    called: list[int] = []
    lost = 0
    for change in range(WARMUP + CHANGES):
        writer = children[change % len(children)]
        if span:
            before_ns, written_ns = writer.call("write_span", change)
        else:
            before_ns = written_ns = writer.call("write", change)
        arrived, missing = arrivals(children, writer.index, change)
        if change >= WARMUP:
            returned += [ns - written_ns for ns in arrived]
            called += [ns - before_ns for ns in arrived]
            lost += missing
        time.sleep(GAP_S)
    return _latency(returned, lost), _latency(called, lost) if span else None


def arrivals(children: Sequence[_Child], writer: int, change: int) -> tuple[list[int], int]:
    """When each other child saw ``change`` (monotonic ns), and how many did not in time. Asked
    once the writer has answered (bench.cluster_child: after its quiet spell)."""
    arrived: list[int] = []
    missing = 0
    deadline = time.monotonic() + LOST_AFTER_S
    for child in children:
        if child.index == writer:
            continue
        seen = child.call("seen", change, max(0.0, deadline - time.monotonic()))
        if seen is None:
            missing += 1
        else:
            arrived.append(seen)
    return arrived, missing


def _latency(samples_ns: list[int], lost: int) -> Latency:
    if not samples_ns:
        return Latency(0, lost, math.nan, math.nan, math.nan)
    ordered = sorted(samples_ns)

    def rank(q: float) -> float:  # nearest rank: a value that was really measured
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1e6

    return Latency(len(ordered), lost, rank(0.50), rank(0.99), ordered[-1] / 1e6)


# Catch-up and idle ----------------------------------------------------------------------------


def _catch_up_and_idle(directory: Path) -> tuple[CatchUp, Idle]:
    with _peer_group(3, "memory", directory) as (children, events):
        writer = children[0]
        count = writer.call("fill", CATCH_UP_FLAGS)
        for child in children:
            child.call("wait_synced", 10.0)
        seed = children[1].address
        address = f"127.0.0.1:{free_port()}"
        arguments = [
            "--mode", "peer", "--listen", address, "--peers", seed,
            "--store", _store_url("sqlite", directory / "new.db"), f"--secret={SECRET}",
            "--catch-up", str(count),
        ]  # fmt: skip
        newcomer = _Child(len(children), arguments, events, directory)
        try:
            newcomer.answer(timeout=60)  # ready
            synced_ns: int = newcomer.call("synced_at", 30.0)
            caught = _wait_event(events, newcomer.index, "caught_up", timeout=30.0)
            catch_up = _catch_up(caught, synced_ns, count)
            for child in [*children, newcomer]:
                child.call("wait_synced", 10.0)
            idle = _idle([*children, newcomer], writer, directory)
        finally:
            newcomer.close()
    return catch_up, idle


def _wait_event(events: Events, index: int, key: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            source, event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"node {index} sent no {key!r} within {timeout} s") from None
        if source == index and key in event:
            return event


def _catch_up(event: dict[str, Any], synced_ns: int, flags: int) -> CatchUp:
    done = event["caught_up"]
    connected = event["connected"]
    return CatchUp(
        flags=flags,
        start_s=(done - event["started"]) / 1e9,
        built_s=(done - event["built"]) / 1e9,
        connected_s=None if connected is None else (done - connected) / 1e9,
        synced_s=(synced_ns - event["started"]) / 1e9,
    )


def _idle(nodes: Sequence[_Child], writer: _Child, directory: Path) -> Idle:
    processes = [psutil.Process(node.process.pid) for node in nodes]
    before = [_cpu_seconds(p) for p in processes]
    started = time.monotonic()
    time.sleep(IDLE_S)
    elapsed = time.monotonic() - started
    after = [_cpu_seconds(p) for p in processes]
    cpu = [(a - b) / elapsed * 100 for a, b in zip(after, before, strict=True)]
    rss: float = writer.call("rss")
    with _group([["--mode", "alone", "--store", "memory://"]], directory) as (alone, _):
        alone[0].call("fill", CATCH_UP_FLAGS)
        alone_rss: float = alone[0].call("rss")
    return Idle(elapsed, cpu, rss, alone_rss)


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)
