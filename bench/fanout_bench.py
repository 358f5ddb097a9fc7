"""Fan-out: how long one change takes to reach 10, 50 and 200 subscribers, for every transport.

One writer (a ``Rollout`` in this process) and N subscribing replicas (``bench.fanout_child``),
spread over at most ``PROCESSES`` child processes: this machine has few cores, so a process
holds many replicas, each with its own connections and sync thread, as separate processes
would. Per backend:

- peers: every replica a node of one full mesh on a memory store (writer included);
- Redis: a Redis store (its own namespace) with its default transport, pub/sub;
- PostgreSQL: a PostgreSQL store (its own schema) with LISTEN/NOTIFY;
- NATS: ``NatsTransport`` (JetStream, its own namespace) on a memory store.

A change is ``activate(f"f{I}")`` on the writer; a sample, for every subscriber, is the time
from ``activate()`` returning on the writer to that subscriber's callback seeing the flag active
(CLOCK_MONOTONIC, one clock for the whole machine on Linux). The next change is made once every
subscriber saw the last one (or after ``LOST_AFTER_S``, when the missing ones count as lost).

A cell that cannot be measured here says why instead (the backend is not reachable; PostgreSQL's
``max_connections`` is smaller than what the subscribers hold; a peer mesh that large is more
than this machine's cores can run). ``python -m bench.fanout_bench`` prints the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from rollout.testing.cluster import free_port

from .cluster import SECRET, Latency, _latency, _redis_problem
from .fanout_child import build, ready
from .nats_fanout import URL as NATS_URL
from .nats_fanout import _delete_stream
from .postgres_bench import POSTGRES_URL, _postgres_problem, _store
from .report import Table

__all__ = ["BACKENDS", "SUBSCRIBERS", "tables"]

_ROOT = Path(__file__).resolve().parent.parent  # where ``python -m bench...`` can import bench

SUBSCRIBERS = (10, 50, 200)
BACKENDS = ("peers", "redis", "postgres", "nats")
_LABELS = {"peers": "peers", "redis": "Redis", "postgres": "PostgreSQL", "nats": "NATS"}
#: Child processes at most; more subscribers share them.
PROCESSES = 10
CHANGES = 40
WARMUP = 5
LOST_AFTER_S = 2.0
#: A pause after a change reached everyone, so the next does not queue behind its tail.
GAP_S = 0.01
#: The largest full mesh measured. 201 nodes hold 20,100 connections (each write: 200 sends by
#: its writer); tried on this project's 2-CPU machine, its nodes had not all connected and synced
#: after 2 minutes (load average 26), so that cell says why instead of running for minutes.
MAX_MESH = 51


def tables() -> list[Table]:
    started = time.monotonic()
    load_average = os.getloadavg()[0]
    cells: dict[tuple[str, int], Latency | str] = {}
    problems = {
        "redis": _redis_problem(),
        "postgres": _postgres_problem(),
        "nats": _nats_problem(),
    }
    per_replica = None if problems["postgres"] else _postgres_connections()
    with tempfile.TemporaryDirectory(prefix="rollout-bench-fanout-") as tmp:
        for size in SUBSCRIBERS:
            for backend in BACKENDS:
                why = problems.get(backend) or _too_big(backend, size, per_replica)
                if why:
                    cells[backend, size] = why
                    continue
                _progress(f"fanout: {backend}, {size} subscribers")
                try:
                    cells[backend, size] = _measure(backend, size, Path(tmp))
                except Exception as exc:  # reported in the cell, never raised: benchmarks report
                    traceback.print_exc(file=sys.stderr)
                    cells[backend, size] = f"failed: {type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    return [_table(cells, load_average, elapsed)]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _nats_problem() -> str | None:
    try:
        import nats  # noqa: F401
    except ImportError:
        return "nats-py is not installed (pip install 'rollout[nats]')"
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2).close()
    except OSError as exc:
        return f"no NATS at {NATS_URL}: {exc}"
    return None


def _postgres_connections() -> tuple[int, int]:
    """(connections one replica holds, connections still free under max_connections)."""
    import psycopg

    from rollout import Rollout

    def count() -> tuple[int, int]:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            row = connection.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    limit, before = count()
    with _store("postgres", Path(".")) as url, Rollout(url) as flags:
        flags.wait_synced(10.0)
        flags.activate("probe")
        _, during = count()
    return during - before, limit - before


def _too_big(backend: str, size: int, postgres: tuple[int, int] | None) -> str | None:
    if backend == "peers" and size + 1 > MAX_MESH:
        return (
            f"not measured: a full mesh of {size + 1} nodes holds {(size + 1) * size // 2:,} "
            f"connections and each write costs its writer {size} sends; on 2 CPUs such a mesh "
            f"had not all connected and synced after 2 minutes (measured up to {MAX_MESH - 1})"
        )
    if backend == "postgres" and postgres is not None:
        per_replica, free = postgres
        needed = (size + 1) * per_replica
        if needed > free:
            return (
                f"not measured: {size + 1} replicas hold {needed} connections "
                f"({per_replica} each); this PostgreSQL has {free} free under max_connections"
            )
    return None


@contextlib.contextmanager
def _config(backend: str, size: int, directory: Path) -> Iterator[dict[str, object]]:
    """Where the writer and subscribers of one run meet; removed afterwards."""
    namespace = f"bench_fanout_{os.getpid()}_{time.monotonic_ns()}"
    config: dict[str, object] = {"backend": backend, "addresses": [], "secret": SECRET}
    if backend == "peers":
        config["addresses"] = [f"127.0.0.1:{free_port()}" for _ in range(size + 1)]
        yield config
    elif backend == "nats":
        config |= {"nats_url": NATS_URL, "namespace": namespace}
        try:
            yield config
        finally:
            with contextlib.suppress(Exception):
                _delete_stream(f"ROLLOUT_{namespace}")
    else:
        with _store(backend, directory) as url:
            config["store"] = url
            yield config


class _Child:
    def __init__(self, config: dict[str, object], replicas: list[dict[str, str]]) -> None:
        self.done: queue.Queue[int | None] = queue.Queue()
        self.answers: queue.Queue[str | None] = queue.Queue()
        argument = json.dumps(config | {"replicas": replicas})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout_child", argument],
            cwd=_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("done "):
                self.done.put(int(line.split()[1]))
            else:
                self.answers.put(line.strip())
        self.answers.put(None)

    def answer(self, timeout: float) -> str:
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"a subscriber process did not answer in {timeout} s") from None
        if line is None:
            raise RuntimeError(f"a subscriber process exited ({self.process.wait()})")
        return line

    def dump(self) -> list[tuple[int, int, int]]:
        assert self.process.stdin is not None
        self.process.stdin.write("dump\n")
        self.process.stdin.flush()
        return [(r, c, ns) for r, c, ns in json.loads(self.answer(60.0))]

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _measure(backend: str, size: int, directory: Path) -> Latency:
    with _config(backend, size, directory) as config:
        addresses: list[str] = config["addresses"]  # type: ignore[assignment]
        replicas = [{"listen": a} for a in addresses[1:]] or [{} for _ in range(size)]
        count = min(PROCESSES, size)
        children = [_Child(config, replicas[i::count]) for i in range(count)]
        try:
            writer = build(backend, config, {"listen": addresses[0]} if addresses else {})
            try:
                for child in children:
                    if child.answer(180.0) != "ready":
                        raise RuntimeError("a subscriber process did not get ready")
                ready(backend, writer, size, 60.0)
                written: dict[int, int] = {}
                for change in range(WARMUP + CHANGES):
                    writer.activate(f"f{change}")
                    written[change] = time.monotonic_ns()
                    _wait_done(children, change)
                    time.sleep(GAP_S)
                samples: list[int] = []
                for child in children:
                    samples += [
                        ns - written[c]
                        for _, c, ns in child.dump()
                        if c >= WARMUP and ns - written[c] <= LOST_AFTER_S * 1e9
                    ]
            finally:
                writer.close()
        finally:
            for child in children:
                child.close()
    return _latency(samples, size * CHANGES - len(samples))


def _wait_done(children: list[_Child], change: int) -> None:
    deadline = time.monotonic() + LOST_AFTER_S
    for child in children:
        while True:
            try:
                done = child.done.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return  # the rest count as lost
            if done == change:
                break


def _table(cells: dict[tuple[str, int], Latency | str], load: float, elapsed: float) -> Table:
    rows = []
    notes = []
    for size in SUBSCRIBERS:
        row = [str(size)]
        for backend in BACKENDS:
            cell = cells[backend, size]
            if isinstance(cell, str):
                row.append("n/a")
                notes.append(f"{_LABELS[backend]} at {size}: {cell}")
            else:
                lost = f", {cell.lost} lost" if cell.lost else ""
                row.append(f"{cell.p50_ms:.2f} / {cell.p99_ms:.2f}{lost}")
        rows.append(row)
    headers = ["subscribers", *(f"{_LABELS[b]} p50 / p99 ms" for b in BACKENDS)]
    return Table(
        "Fan-out: one change to 10, 50 and 200 subscribers",
        headers,
        rows,
        (
            f"{CHANGES} changes (after {WARMUP} unmeasured) from one writer; a sample per change "
            "and subscriber: activate() returned on the writer -> that subscriber saw the flag "
            f"active. Subscribers: Rollout replicas over at most {PROCESSES} processes, each with "
            "its own connections and sync thread. Peers: one full mesh on memory stores; Redis "
            "and PostgreSQL: their stores with their default transports (pub/sub, "
            "LISTEN/NOTIFY); NATS: NatsTransport (JetStream) on memory stores. Lost: not seen "
            f"within {LOST_AFTER_S:g} s.",
            "Below zero: the subscriber had the change before activate() returned on the writer "
            "(Redis and PostgreSQL send it from the server while the writer still waits for the "
            "reply to its write).",
            *notes,
            f"All processes and servers share this machine's {os.cpu_count()} CPUs; its 1-minute "
            f"load average was {load:.2f} when the section started; it took {elapsed:.0f} s.",
        ),
    )


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
