"""``python -m bench``: every benchmark in one run; tables on stdout and in bench/results.md.

Progress goes to stderr. The run always exits 0 when it could measure: a missed target is
reported as MISS, never raised (benchmarks report, tests assert).

``make bench-quick`` runs the checks and writes sections with fewer repeats and GrowthBook as the
only peer (``BENCH_QUICK=1 BENCH_ONLY=checks,writes``): under a minute, for comparing a change
before and after.

``BENCH_ONLY=cluster`` (a comma-separated list of sections: checks, writes, memory, state,
cluster, handshake, scale, redis, postgres, fanout, openfeature, targeting, degrade, http, ofrep,
serve, dashboard, import) runs only those; the default is all of them. The scale section (the
mesh at 3, 10, 20 and 30 processes, about two minutes) also runs alone: ``python -m
bench.scale``. The Targets table needs writes and memory; only a run of every section rewrites
bench/results.md.
The redis section is skipped, with the reason, when no Redis answers at ``BENCH_REDIS_URL``
(default redis://127.0.0.1:6379/0); the postgres section's columns likewise, for PostgreSQL at
``BENCH_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test), and the fanout
section's, for those two and NATS at ``BENCH_NATS_URL`` (default nats://127.0.0.1:4222).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import sys
import threading
import time
from pathlib import Path

from . import (
    dashboard_bench,
    degrade_bench,
    fanout_bench,
    handshake_bench,
    http_bench,
    import_bench,
    ofrep_bench,
    openfeature_bench,
    postgres_bench,
    scale,
    serve_bench,
    state,
    targeting_bench,
)
from ._timing import QUICK, REPEAT
from .checks import measure_checks, measure_world_size
from .cluster import measure_cluster
from .memory import measure_memory
from .redis_bench import measure_redis
from .report import (
    Table,
    check_table,
    check_targets_table,
    cluster_latency_table,
    cluster_node_table,
    cluster_targets_table,
    memory_table,
    redis_tables,
    targets_table,
    world_size_table,
    write_table,
)
from .writes import measure_writes

RESULTS = Path(__file__).resolve().parent / "results.md"
#: The machine is shared: how busy it was says how far to trust a run's absolute times.
STARTING_LOAD = ", ".join(f"{load:.2f}" for load in os.getloadavg())  # at import: the start
SECTIONS = (
    "checks",
    "writes",
    "memory",
    "state",
    "cluster",
    "handshake",
    "scale",
    "redis",
    "postgres",
    "fanout",
    "openfeature",
    "targeting",
    "degrade",
    "http",
    "ofrep",
    "serve",
    "dashboard",
    "import",
)

_DISTRIBUTIONS = (
    "rollout",
    "growthbook",
    "flagsmith",
    "UnleashClient",
    "launchdarkly-server-sdk",
    "openfeature-sdk",
    "psutil",
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header() -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    versions = ", ".join(f"{d} {_version(d)}" for d in _DISTRIBUTIONS)
    return [
        f"Date: {now}",
        f"Python: {python} on {platform.platform()}, {os.cpu_count()} CPUs",
        f"Libraries: {versions}",
        f"Timing: timeit, best of {REPEAT} repeats of about 0.2 s each, gc off while timing."
        + (" A quick run (make bench-quick): GrowthBook is the only peer." if QUICK else ""),
        f"Load average (1, 5, 15 min) when the run started: {STARTING_LOAD}",
    ]


def _load() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def _sections() -> set[str]:
    chosen = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown sections {sorted(unknown)}; known: {SECTIONS}")
    return chosen or set(SECTIONS)


def main() -> None:
    started = time.perf_counter()
    sections = _sections()
    checks = writes = memory = None
    world = None
    if "checks" in sections:
        print("measuring checks (about a minute)...", file=sys.stderr, flush=True)
        checks = measure_checks()
        world = measure_world_size()
    if "writes" in sections:
        print("measuring writes...", file=sys.stderr, flush=True)
        writes = measure_writes()
    if "memory" in sections:
        print("measuring memory...", file=sys.stderr, flush=True)
        memory = measure_memory()
    tables: list[Table] = []
    if checks is not None:
        tables += [check_table(checks), check_targets_table(checks)]
    if world is not None:
        tables.append(world_size_table(world))
    if writes is not None and memory is not None:
        tables.append(targets_table(writes, memory))
    if writes is not None:
        tables.append(write_table(writes))
    if memory is not None:
        tables.append(memory_table(memory))
    if "cluster" in sections:
        print("measuring the cluster (about a minute)...", file=sys.stderr, flush=True)
        cluster = measure_cluster()
        tables += [
            cluster_latency_table(cluster),
            cluster_targets_table(cluster),
            cluster_node_table(cluster),
        ]
    if "scale" in sections:
        print("measuring the mesh at scale (about two minutes)...", file=sys.stderr, flush=True)
        tables += scale.tables()
    if "redis" in sections:
        print("measuring Redis (about a minute and a half)...", file=sys.stderr, flush=True)
        tables += redis_tables(measure_redis())
    # Each of these modules runs alone too: `python -m bench.<module>`.
    for section, module, what in (
        ("state", state, "1,000 flags + a 1,000,000-user flag in four stores (minutes)"),
        ("handshake", handshake_bench, "the peer handshake"),
        ("postgres", postgres_bench, "PostgreSQL: writes and LISTEN/NOTIFY fan-out"),
        ("fanout", fanout_bench, "fan-out to 10, 50 and 200 subscribers (about 3 minutes)"),
        ("openfeature", openfeature_bench, "the OpenFeature provider"),
        ("targeting", targeting_bench, "targeting rules, fractional and sem_ver"),
        ("degrade", degrade_bench, "degrade"),
        ("http", http_bench, "the HTTP API with wrk"),
        ("ofrep", ofrep_bench, "OFREP evaluations with wrk"),
        ("serve", serve_bench, "rollout serve's writes and stalled connections"),
        ("dashboard", dashboard_bench, "the dashboard in Chromium"),
        ("import", import_bench, "import rollout in fresh processes"),
    ):
        if section in sections:
            print(f"measuring {what}...", file=sys.stderr, flush=True)
            tables += module.tables()
    lines = header()
    print("rollout benchmarks\n")
    print("\n".join(lines))
    for table in tables:
        print(f"\n{table.text()}")
    if sections == set(SECTIONS):
        RESULTS.write_text(
            "## Benchmark results\n\n"
            + "".join(f"{line}  \n" for line in lines)
            + "".join(f"\n{table.markdown()}\n" for table in tables)
            + f"\nLoad average (1, 5, 15 min) when the run ended: {_load()}\n"
            + "\nGenerated by `make bench` (`python -m bench`); overwritten on every run.\n"
        )
    print(f"\nLoad average (1, 5, 15 min) when the run ended: {_load()}")
    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if lingering:
        print(f"\nthreads still running: {', '.join(lingering)}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    if sections == set(SECTIONS):
        print(f"\nwrote {RESULTS} in {elapsed:.0f} s", file=sys.stderr)
    else:
        print(
            f"\nran {', '.join(sorted(sections))} in {elapsed:.0f} s; {RESULTS} is left as it "
            "was (only a run of every section rewrites it)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
