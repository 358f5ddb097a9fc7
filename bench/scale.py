"""Scale: the full mesh measured at 3, 10, 20 and 30 node processes on this machine.

For every size, real ``bench.cluster_child`` processes (memory stores, a strong shared secret,
the default 1 s anti-entropy interval) are started at once. Every node is configured with the
same three seeds (the first three nodes), not with the whole list: the rest of the mesh forms by
membership gossip, as it would in a deployment that lists a few well-known nodes. Then:

- formation: from launching the first process to every node connected to every other (this
  includes starting 30 Python interpreters on the machine's CPUs), and from the moment the last
  node answered "ready" (its ``Rollout`` built, listening and dialling) to the full mesh;
- propagation: ``bench.cluster``'s fan-out measure (a change written on each node in turn, timed
  until every other node's subscriber sees it), p50 and p99 over every (change, receiver) pair;
- idle: CPU of every node (psutil CPU time over wall time, % of one CPU) over 10 s with nothing
  written, measured right after formation and a full sync;
- memory: resident set size of every node (psutil) after the idle period;
- connections: peers each node counts as connected, and the TCP sockets each process holds;
- the Redis reference: the same number of processes, each a ``Rollout`` on one Redis store (its
  own pub/sub keeps them live), the same propagation measure: what a team moving to Redis gets
  on this machine. Skipped, with the reason, when no Redis answers at ``BENCH_REDIS_URL``.

Run alone with ``python -m bench.scale`` (about two minutes on 2 CPUs), or as the ``scale``
section of ``python -m bench`` (``BENCH_ONLY=scale``). ``BENCH_SCALE_SIZES=3,10`` picks sizes.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from rollout.testing.cluster import free_port

from .cluster import (
    CHANGES,
    QUIET_NOTE,
    WARMUP,
    Latency,
    _Child,
    _fan_out,
    _group,
    _redis_problem,
)
from .redis_bench import _delete_namespace, _store_url
from .report import Table

__all__ = ["ScaleRun", "measure_scale", "scale_tables"]

SIZES: tuple[int, ...] = (3, 10, 20, 30)
SEEDS = 3
IDLE_S = 10.0
FORMATION_TIMEOUT_S = 120.0
#: Propagation targets (p50 ms, p99 ms) by cluster size, as the project states them.
TARGETS: dict[int, tuple[float, float]] = {3: (0.5, 3.0), 10: (2.0, 10.0)}


@dataclass(frozen=True)
class ScaleRun:
    nodes: int
    formation_s: float  # first process launched -> full mesh
    mesh_after_ready_s: float  # every node ready -> full mesh
    latency: Latency
    idle_cpu_percent: list[float]  # per node, of one CPU
    rss_mb: list[float]  # per node
    peers_connected: list[int]  # per node
    tcp_sockets: list[int]  # per node: established TCP connections of the process
    redis: Latency | None  # the same measure with a Redis store instead; None: no Redis


def _sizes() -> tuple[int, ...]:
    chosen = os.environ.get("BENCH_SCALE_SIZES", "")
    if not chosen.strip():
        return SIZES
    try:
        sizes = tuple(int(s) for s in chosen.split(",") if s.strip())
    except ValueError:
        raise SystemExit(f"BENCH_SCALE_SIZES must be like '3,10,20', got {chosen!r}") from None
    if not sizes or any(size < 2 for size in sizes):
        raise SystemExit(f"BENCH_SCALE_SIZES: every size must be at least 2, got {chosen!r}")
    return sizes


def measure_scale(
    sizes: Sequence[int] | None = None,
) -> tuple[list[ScaleRun], float, str | None]:
    """One run per size; the machine's 1-minute load average when it started; and why there is
    no Redis reference (None: there is one)."""
    load_average = os.getloadavg()[0]
    redis_failure = _redis_problem()
    runs = []
    with tempfile.TemporaryDirectory(prefix="rollout-bench-scale-") as tmp:
        for size in sizes or _sizes():
            print(f"scale: {size} nodes", file=sys.stderr, flush=True)
            run = _measure(size, Path(tmp))
            if redis_failure is None:
                print(f"scale: {size} processes on a Redis store", file=sys.stderr, flush=True)
                run = dataclasses.replace(run, redis=_measure_redis(size, Path(tmp)))
            runs.append(run)
    return runs, load_average, redis_failure


def _measure_redis(size: int, directory: Path) -> Latency:
    namespace = f"rollout-bench-scale-{os.getpid()}-{time.monotonic_ns()}"
    arguments = [["--mode", "redis-store", "--store", _store_url(namespace)]] * size
    try:
        with _group(arguments, directory) as (children, _):
            for child in children:
                if not child.call("wait_synced", 30.0):
                    raise TimeoutError(f"process {child.index} did not connect to Redis")
            return _fan_out(children)
    finally:
        _delete_namespace(namespace)


def _measure(size: int, directory: Path) -> ScaleRun:
    secret = secrets.token_urlsafe(32)
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(size)]
    seeds = addresses[:SEEDS]
    arguments = [
        [
            "--mode", "peer", "--listen", address, "--store", "memory://",
            "--peers", ",".join(s for s in seeds if s != address),
            f"--secret={secret}",  # one argument: a token may start with "-"
        ]
        for address in addresses
    ]  # fmt: skip
    launched = time.monotonic()
    with _group(arguments, directory) as (children, _):
        ready = time.monotonic()  # _group returns once every node answered "ready"
        meshed = _wait_full_mesh(children)
        for child in children:
            if not child.call("wait_synced", 30.0):
                raise TimeoutError(f"node {child.index} did not sync with its peers")
        processes = [psutil.Process(child.process.pid) for child in children]
        cpu = _idle_cpu(processes)
        rss = [p.memory_info().rss / 2**20 for p in processes]
        peers = [int(child.call("connected")) for child in children]
        sockets = [
            sum(1 for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED)
            for p in processes
        ]
        latency = _fan_out(children)
    return ScaleRun(
        size, meshed - launched, meshed - ready, latency, cpu, rss, peers, sockets, None
    )


def _wait_full_mesh(children: Sequence[_Child]) -> float:
    """Poll until every node counts every other as connected; the monotonic time it was so."""
    deadline = time.monotonic() + FORMATION_TIMEOUT_S
    pending = list(children)
    full = len(children) - 1
    while True:
        # Polled every 20 ms: the poll itself costs the nodes a little CPU, and the figure is
        # read to the nearest 20 ms.
        pending = [c for c in pending if c.call("connected") < full]
        if not pending:
            return time.monotonic()
        if time.monotonic() > deadline:
            stuck = [c.index for c in pending]
            raise TimeoutError(f"nodes {stuck} not connected to every other node in time")
        time.sleep(0.02)


def _idle_cpu(processes: Sequence[psutil.Process]) -> list[float]:
    def cpu_seconds(process: psutil.Process) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    before = [cpu_seconds(p) for p in processes]
    started = time.monotonic()
    time.sleep(IDLE_S)
    elapsed = time.monotonic() - started
    return [(cpu_seconds(p) - b) / elapsed * 100 for p, b in zip(processes, before, strict=True)]


# Report ---------------------------------------------------------------------------------------


def _spread(values: Sequence[float], digits: int) -> str:
    """``mean (max)``: the typical node and the worst one."""
    return f"{statistics.fmean(values):.{digits}f} ({max(values):.{digits}f})"


def scale_tables(
    runs: Sequence[ScaleRun], load_average: float, redis_failure: str | None
) -> list[Table]:
    rows = []
    for run in runs:
        lat = run.latency
        rows.append(
            [
                f"{run.nodes} nodes",
                f"{run.formation_s:.2f}",
                f"{run.mesh_after_ready_s:.2f}",
                f"{lat.p50_ms:.2f}",
                f"{lat.p99_ms:.2f}",
                str(lat.lost),
                _spread(run.idle_cpu_percent, 2),
                _spread(run.rss_mb, 1),
                f"{min(run.peers_connected)}-{max(run.peers_connected)}",
                f"{min(run.tcp_sockets)}-{max(run.tcp_sockets)}",
                "n/a" if run.redis is None else f"{run.redis.p50_ms:.2f}",
                "n/a" if run.redis is None else f"{run.redis.p99_ms:.2f}",
            ]
        )
    headers = [
        "mesh",
        "formation s",
        "after ready s",
        "p50 ms",
        "p99 ms",
        "lost",
        "idle CPU % (max)",
        "RSS MB (max)",
        "peers",
        "TCP conns",
        "Redis p50 ms",
        "Redis p99 ms",
    ]
    notes = (
        f"Every node a real process with a memory store, all started at once, each configured "
        f"with the same {SEEDS} seeds (the rest of the mesh forms by membership gossip); "
        "formation: first process launched -> every node connected to every other; after "
        "ready: the last node ready (Rollout() returned) -> full mesh (polled every 20 ms).",
        f"Propagation: {CHANGES} changes (after {WARMUP} unmeasured), each activate() on the "
        "next node in turn, timed to every other node's subscriber (CLOCK_MONOTONIC inside the "
        "nodes) from activate() returning (the writer has sent the change by then: the cluster "
        "section also times it from the call); lost: (change, node) pairs not seen within 2 s.",
        QUIET_NOTE,
        f"Idle CPU: % of one CPU per node over {IDLE_S:.0f} s with nothing written "
        "(anti-entropy every 1 s), mean and busiest node; RSS: mean and largest node; peers: "
        "connected peers per node (min-max); TCP conns: established TCP sockets per process.",
        "Redis: as many processes, each a Rollout on one Redis store (kept live by its "
        "pub/sub), the same propagation measure, run right after the mesh of that size. Timed "
        "from activate() returning, like the mesh: the store publishes before the writer has "
        "its reply, so a receiver may see a change first (a negative time).",
        f"All nodes share this machine's {os.cpu_count()} CPUs; its 1-minute load average was "
        f"{load_average:.2f} when the section started.",
        *([f"Redis columns skipped: {redis_failure}"] if redis_failure else []),
    )
    targets: list[list[str]] = []
    for run in runs:
        if run.nodes not in TARGETS:
            continue
        p50, p99 = TARGETS[run.nodes]
        lat = run.latency
        for what, limit, value in (("p50", p50, lat.p50_ms), ("p99", p99, lat.p99_ms)):
            target = f"propagation {what} < {limit:g} ms ({run.nodes} nodes)"
            targets.append([target, f"{value:.2f} ms", _verdict(value < limit)])
        targets.append(
            [f"no change lost ({run.nodes} nodes)", f"{lat.lost} lost", _verdict(lat.lost == 0)]
        )
    return [
        Table("Scale: the full mesh, 3 to 30 processes", headers, rows, notes),
        Table("Scale targets", ["target", "measured", "result"], targets),
    ]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def tables() -> list[Table]:
    return scale_tables(*measure_scale())


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
