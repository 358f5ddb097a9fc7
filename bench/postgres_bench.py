"""PostgreSQL: write latency of a ``Rollout`` on a PostgreSQL store, and how fast a change fans
out to 3 and 10 processes through LISTEN/NOTIFY, next to the peer mesh and a Redis store
measured the same way in the same run.

- fan-out: ``size`` processes (``bench.cluster_child``), each a ``Rollout`` on the store with its
  default transport (peers: a full mesh on memory stores); every change is an ``activate()`` by
  the next process in turn, and a sample is, for each of the others, the time from
  ``activate()`` returning on the writer to that process seeing the flag active
  (``bench.cluster._fan_out``; CLOCK_MONOTONIC read inside the processes);
- writes: ``WRITES`` ``activate_user`` calls from one process, each timed on its own, on a
  PostgreSQL store, a Redis store and an SQLite file.

Every run uses a schema (namespace, file) of its own, dropped afterwards. PostgreSQL at
``BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); a backend that
cannot be reached is a column of n/a with the reason in a note. Never raises: benchmarks report.
Runs alone too: ``python -m bench.postgres_bench``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from rollout import Rollout

from .cluster import (
    CHANGES,
    QUIET_NOTE,
    REDIS_URL,
    SECRET,
    WARMUP,
    Latency,
    _fan_out,
    _group,
    _peer_group,
    _redis_problem,
)
from .report import Table

__all__ = ["POSTGRES_URL", "SIZES", "WRITES", "tables"]

T = TypeVar("T")

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Process counts of the fan-out runs.
SIZES = (3, 10)
#: activate_user calls timed per store.
WRITES = 1_000


def tables() -> list[Table]:
    started = time.monotonic()
    load_average = os.getloadavg()[0]
    problems = {"postgres": _postgres_problem(), "redis": _redis_problem()}
    fan_out: dict[tuple[str, int], Latency | None] = {}
    writes: dict[str, list[int] | None] = {}
    with tempfile.TemporaryDirectory(prefix="rollout-bench-pg-") as tmp:
        directory = Path(tmp)
        for size in SIZES:
            for backend in ("peers", "redis", "postgres"):
                if problems.get(backend):
                    fan_out[backend, size] = None
                    continue
                _progress(f"postgres: fan-out to {size} processes, {backend}")
                fan_out[backend, size] = _attempt(
                    f"fan-out {backend} {size}", _fan, backend, size, directory
                )
        for backend in ("sqlite", "redis", "postgres"):
            if problems.get(backend):
                writes[backend] = None
                continue
            _progress(f"postgres: {WRITES:,} activate_user calls, {backend} store")
            writes[backend] = _attempt(f"writes {backend}", lambda b=backend: _writes(b, directory))
    notes = [f"{name}: {problem}" for name, problem in problems.items() if problem]
    notes.append(
        f"All processes and servers share this machine's {os.cpu_count()} CPUs; its 1-minute "
        f"load average was {load_average:.2f} when the section started; it took "
        f"{time.monotonic() - started:.0f} s."
    )
    return [_fan_out_table(fan_out, notes), _write_table(writes)]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _attempt(name: str, run: Callable[..., T], *arguments: object) -> T | None:
    try:
        return run(*arguments)
    except Exception as exc:  # reported, never raised: benchmarks report
        traceback.print_exc(file=sys.stderr)
        _progress(f"postgres: {name} failed: {type(exc).__name__}: {exc}")
        return None


def _postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'rollout[postgres]')"
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL at {POSTGRES_URL}: {' '.join(str(exc).split())}"
    return None


@contextlib.contextmanager
def _store(backend: str, directory: Path) -> Iterator[str]:
    """A fresh store URL of ``backend``, removed afterwards."""
    name = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    if backend == "postgres":
        try:
            yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={name}"
        finally:
            import psycopg

            with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    elif backend == "redis":
        try:
            yield f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}namespace={name}"
        finally:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{name}:*"))
            if keys:
                client.delete(*keys)
            client.close()
    else:
        yield f"sqlite:///{directory / (name + '.db')}"


def _fan(backend: str, size: int, directory: Path) -> Latency:
    if backend == "peers":
        with _peer_group(size, "memory", directory) as (children, _):
            return _fan_out(children)
    with _store(backend, directory) as url:
        arguments = [["--mode", "store", "--store", url, f"--secret={SECRET}"]] * size
        with _group(arguments, directory) as (children, _):
            for child in children:
                if not child.call("wait_synced", 10.0):
                    raise TimeoutError(f"process {child.index} did not connect to {backend}")
            return _fan_out(children)


def _writes(backend: str, directory: Path) -> list[int]:
    with _store(backend, directory) as url, Rollout(url) as flags:
        if not flags.wait_synced(10.0):
            raise TimeoutError(f"the {backend}-backed Rollout did not connect")
        flags.activate_user("warm-up", 0)
        per_call: list[int] = []
        clock = time.perf_counter_ns
        for user in range(WRITES):
            start = clock()
            flags.activate_user("big", user)
            per_call.append(clock() - start)
        return per_call


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _fan_out_table(results: dict[tuple[str, int], Latency | None], notes: list[str]) -> Table:
    rows = []
    for size in SIZES:
        row = [str(size)]
        for backend in ("peers", "redis", "postgres"):
            latency = results.get((backend, size))
            row += (
                ["n/a", "n/a"]
                if latency is None
                else [f"{_ms(latency.p50_ms)} / {_ms(latency.p99_ms)}", str(latency.lost)]
            )
        rows.append(row)
    headers = [
        "processes",
        "peers p50 / p99 ms",
        "lost",
        "Redis store p50 / p99 ms",
        "lost",
        "PostgreSQL store p50 / p99 ms",
        "lost",
    ]
    return Table(
        "PostgreSQL: change fan-out latency, next to peers and Redis",
        headers,
        rows,
        (
            f"{CHANGES} changes (after {WARMUP} unmeasured), each activate() by the next process "
            "in turn; a sample per change and each other process: activate() returned on the "
            "writer -> the flag active there. Peers: a full mesh on memory stores; Redis: "
            "pub/sub; PostgreSQL: LISTEN/NOTIFY. A lost sample did not arrive within 2 s.",
            QUIET_NOTE,
            *notes,
        ),
    )


def _write_table(results: dict[str, list[int] | None]) -> Table:
    rows = []
    for backend, label in (
        ("sqlite", "SQLite file"),
        ("redis", "Redis"),
        ("postgres", "PostgreSQL"),
    ):
        samples = results.get(backend)
        if not samples:
            rows.append([label, "n/a", "n/a", "n/a"])
            continue
        ordered = sorted(samples)
        p99 = ordered[max(0, int(0.99 * len(ordered)) - 1)]
        rows.append(
            [
                label,
                _ms(statistics.median(ordered) / 1e6),
                _ms(p99 / 1e6),
                _ms(statistics.fmean(ordered) / 1e6),
            ]
        )
    return Table(
        "PostgreSQL: write latency, next to SQLite and Redis",
        ["store", "p50 ms", "p99 ms", "mean ms"],
        rows,
        (
            f"{WRITES:,} activate_user() calls to one flag from one process, each timed on its "
            "own: the write is durable in the store when the call returns (PostgreSQL: one "
            "transaction, its COMMIT; SQLite: synchronous=NORMAL in WAL mode).",
        ),
    )


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
