"""Scale of state: 1,000 flags plus one flag listing 1,000,000 users, in each of the four stores.

For every store (memory, SQLite file, Redis namespace, PostgreSQL schema; each new, removed
afterwards), three fresh processes (``bench.state_child``), so every RSS is that work's alone:

- build: write the 1,000 small flags and fill the big flag with one ``activate_users`` call (the
  public bulk path); RSS after writing; ``activate_user`` on the big flag against an empty flag
  (interleaved, best of 5 repeats of 200 calls); ``export()``, written to a file;
- reopen: ``Rollout(url)`` on that store in a new process, until it holds everything (not for
  the memory store, whose data ends with its process);
- merge: ``merge()`` of that export into ``Rollout(url)`` on a new, empty store of the same kind.

Targets (issue 15): RSS < 400 MB in each process, reopen < 3 s, export and merge < 5 s, and a
write on the big flag within 1.2x of one on an empty flag.

``BENCH_ONLY=state`` runs it in ``python -m bench``; alone: ``python -m bench.state``.
``BENCH_STATE_USERS`` sets the big flag's size (default 1,000,000), ``BENCH_STATE_STORES`` the
stores (default ``memory,sqlite,redis,postgres``). Redis and PostgreSQL are skipped, with the
reason, when they do not answer (``BENCH_REDIS_URL``, ``BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cluster import _redis_problem
from .postgres_bench import _postgres_problem, _store
from .redis_bench import _count_keys, _delete_namespace, _store_url
from .report import Table

__all__ = ["StateRun", "measure_state", "tables"]

STORES = ("memory", "sqlite", "redis", "postgres")
USERS = 1_000_000
RSS_MB = 400.0
REOPEN_S = 3.0
EXPORT_S = MERGE_S = 5.0
WRITE_RATIO = 1.2
#: Stores filled ``activate_users`` a chunk of ids at a time: PostgreSQL saves a local write in
#: one transaction whatever its size, and one of a million ids outlasts its timeout. Redis saves
#: a write of more than 25,000 registers in chunks itself (as it does a merge: measured whole),
#: but is filled in the same calls as before, so that its numbers compare with earlier runs.
CHUNKS = {"redis": 50_000, "postgres": 50_000}
#: Stores whose merge of the whole export is not attempted, and why.
NO_WHOLE_MERGE: dict[str, str] = {}
_ROOT = Path(__file__).resolve().parent.parent  # where ``python -m bench...`` can import bench
_TIMEOUT_S = 900


@dataclass(frozen=True)
class StateRun:
    store: str
    build: dict[str, Any]  # bench.state_child's build figures
    reopen: dict[str, Any] | None  # None: the memory store (nothing outlives it), or failed
    merge: dict[str, Any] | None  # None: not measured or failed
    problems: dict[str, str | None]  # step ("reopen", "merge") -> why it has no figures


def _users() -> int:
    chosen = os.environ.get("BENCH_STATE_USERS", "").strip()
    if not chosen:
        return USERS
    if not chosen.isdigit() or int(chosen) < 1:
        raise SystemExit(f"BENCH_STATE_USERS must be a positive integer, got {chosen!r}")
    return int(chosen)


def _stores() -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in os.environ.get("BENCH_STATE_STORES", "").split(",") if s)
    unknown = set(chosen) - set(STORES)
    if unknown:
        raise SystemExit(f"BENCH_STATE_STORES: unknown stores {sorted(unknown)}; known: {STORES}")
    return chosen or STORES


def measure_state() -> tuple[list[StateRun], list[str], int, float]:
    """Runs per store, the stores skipped (with why), the big flag's size, the load average."""
    load_average = os.getloadavg()[0]
    users = _users()
    runs: list[StateRun] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rollout-bench-state-") as tmp:
        directory = Path(tmp)
        for store in _stores():
            problem = _problem(store)
            if problem is not None:
                skipped.append(f"{store}: {problem}")
                continue
            print(f"state: {store}, {users:,} users", file=sys.stderr, flush=True)
            try:
                runs.append(_measure(store, users, directory))
            except Exception as exc:  # reported, never raised: benchmarks report
                print(exc, file=sys.stderr, flush=True)
                skipped.append(f"{store}: failed: {_last_line(exc)}")
    return runs, skipped, users, load_average


def _problem(store: str) -> str | None:
    if store == "redis":
        return _redis_problem()
    if store == "postgres":
        return _postgres_problem()
    return None


def _measure(store: str, users: int, directory: Path) -> StateRun:
    export = directory / f"{store}-export.json"
    if store == "memory":
        build = _child("build", "memory://", users, export)
        merge = _child("merge", "memory://", users, export)
        return StateRun(store, build, None, merge, {})
    chunk = CHUNKS.get(store, 0)
    reopen: dict[str, Any] | None = None
    reopen_problem: str | None = None
    with _fresh(store, directory) as url:
        build = _child("build", url, users, export, chunk)
        try:
            reopen = _child("reopen", url, users)
        except RuntimeError as exc:  # reported, never raised
            reopen_problem = _last_line(exc)
    problems = {"reopen": reopen_problem, "merge": NO_WHOLE_MERGE.get(store)}
    if store in NO_WHOLE_MERGE:
        return StateRun(store, build, reopen, None, problems)
    try:
        with _fresh(store, directory) as url:
            merge = _child("merge", url, users, export)
    except RuntimeError as exc:  # reported, never raised
        return StateRun(store, build, reopen, None, {**problems, "merge": _last_line(exc)})
    return StateRun(store, build, reopen, merge, problems)


@contextlib.contextmanager
def _fresh(store: str, directory: Path) -> Iterator[str]:
    """A new store (bench.postgres_bench's), removed afterwards; for Redis, the removal waits
    while Redis answers BUSY (a script of a big write still running) instead of failing."""
    if store != "redis":
        with _store(store, directory) as url:
            yield url
        return
    namespace = f"bench_{os.getpid()}_{time.monotonic_ns()}"
    try:
        yield _store_url(namespace)
    finally:
        deadline = time.monotonic() + 300
        while True:
            try:
                _delete_namespace(namespace)  # says, without raising, when Redis refused
                if _count_keys(namespace) == 0:
                    break
            except Exception as exc:  # BUSY: redis-py's ResponseError
                if time.monotonic() > deadline:
                    print(f"state: {namespace} not removed: {exc}", file=sys.stderr)
                    break
                time.sleep(2)


def _last_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[-1]


def _child(
    mode: str, url: str, users: int, export: Path | None = None, chunk: int = 0
) -> dict[str, Any]:
    arguments = [mode, url, str(users), *([] if export is None else [str(export)])]
    if chunk:
        arguments.append(str(chunk))
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.state_child", *arguments],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"state child {mode!r} on {url} failed:\n{completed.stderr}")
    print(f"  {mode}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def state_tables(
    runs: list[StateRun], skipped: list[str], users: int, load_average: float
) -> list[Table]:
    figures: list[list[str]] = []
    targets: list[list[str]] = []
    for run in runs:
        b, r, m = run.build, run.reopen, run.merge
        ratio = b["big_us"] / b["empty_us"]
        processes = [b, *([] if r is None else [r]), *([] if m is None else [m])]
        figures.append(
            [
                run.store,
                f"{b['fill_s']:.1f}",
                f"{b['rss_mb']:.0f}",
                "n/a"
                if run.store == "memory"
                else "failed"
                if r is None
                else f"{r['seconds']:.2f}",
                "n/a" if r is None else f"{r['rss_mb']:.0f}",
                f"{b['export_s']:.2f}",
                "not measured" if m is None else f"{m['seconds']:.2f}",
                "n/a" if m is None else f"{m['rss_mb']:.0f}",
                f"{max(p['peak_mb'] or 0.0 for p in processes):.0f}",
                f"{b['empty_us']:.0f}",
                f"{b['big_us']:.0f}",
                f"{ratio:.2f}x",
            ]
        )
        rss = max(p["rss_mb"] for p in processes)
        merged = (
            ["not measured", "MISS"]
            if m is None
            else [f"{m['seconds']:.2f} s", _verdict(m["seconds"] < MERGE_S)]
        )
        targets += [
            [f"{run.store}: RSS of each process < {RSS_MB:.0f} MB", f"{rss:.0f} MB",
             _verdict(rss < RSS_MB)],
            *(
                []
                if run.store == "memory"
                else [[f"{run.store}: reopen < {REOPEN_S:.0f} s",
                       "failed" if r is None else f"{r['seconds']:.2f} s",
                       "MISS" if r is None else _verdict(r["seconds"] < REOPEN_S)]]
            ),
            [f"{run.store}: export < {EXPORT_S:.0f} s", f"{b['export_s']:.2f} s",
             _verdict(b["export_s"] < EXPORT_S)],
            [f"{run.store}: merge into an empty store < {MERGE_S:.0f} s", *merged],
            [f"{run.store}: activate_user, big flag <= {WRITE_RATIO}x empty flag", f"{ratio:.2f}x",
             _verdict(ratio <= WRITE_RATIO)],
        ]  # fmt: skip
        for step, problem in run.problems.items():
            if problem is not None:
                skipped.append(f"{run.store}'s {step}: {problem}")
    headers = [
        "store",
        "fill, s",
        "RSS written, MB",
        "reopen, s",
        "RSS reopened, MB",
        "export, s",
        "merge, s",
        "RSS merged, MB",
        "peak RSS, MB",
        "write empty, us",
        "write big, us",
        "ratio",
    ]
    size = runs[0].build["export_mb"] if runs else 0.0
    notes = (
        f"1,000 flags (a percentage, 2 users, 2 data keys each) plus one flag of {users:,} "
        "users, filled by activate_users: all ids in one call, or (Redis, PostgreSQL) "
        f"{next(iter(CHUNKS.values())):,} a call; each column a fresh process (RSS includes "
        f"the interpreter, after gc.collect()). The export is {size:.0f} MB. Writes: "
        "activate_user, best of 5 interleaved repeats of 200 calls. "
        f"Load average when the section started: {load_average:.2f}.",
        *(f"Not measured: {reason}" for reason in skipped),
    )
    return [
        Table(f"Scale of state: 1,000 flags + a {users:,}-user flag", headers, figures, notes),
        Table("Scale of state: targets", ["target", "measured", ""], targets),
    ]


def tables() -> list[Table]:
    return state_tables(*measure_state())


def main() -> None:
    for table in tables():
        print(f"\n{table.text()}")


if __name__ == "__main__":
    main()
