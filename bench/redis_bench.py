"""Redis: a ``Rollout`` on a Redis store, kept live in every process by Redis pub/sub.

Three measures, each in its own fresh namespace (``rollout-bench-<pid>-<ns>-<part>``), whose
keys are deleted afterwards (``SCAN ns:*`` then ``DEL``):

- fan-out latency: 10 processes (``bench.cluster_child --mode redis-store``), each a
  ``Rollout("redis://...?namespace=NS")``; every change is an ``activate()`` by the next process
  in turn, and a sample is, for each of the 9 others, the time from ``activate()`` returning on
  the writer to that process's subscriber seeing the flag active. Next to it, measured in the
  same run and interleaved change by change: the raw reference of ``bench.cluster`` (10 plain
  redis-py pub/sub processes on one channel, PUBLISH -> message at the 9 others). Times are
  CLOCK_MONOTONIC read inside the processes, as in ``bench.cluster``;
- check cost: ``flags.active("on")`` and ``flags.active("chat", user)`` (the 20% flag with three
  groups of ``bench.checks``) on a Redis-backed ``Rollout`` against an in-memory one, timed the
  same way and interleaved: a check never touches Redis, so the two should cost the same;
- flat writes: 10,000 ``activate_user("big", i)`` calls from one process on a Redis-backed
  ``Rollout``, each timed on its own; the first 1,000 calls against the last 1,000: a flag's
  users are one hash field each, so a call should not slow down as the list grows.

Skipped, with the reason, when redis-py is missing or no Redis answers at ``BENCH_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``). A part that fails is reported as not measured; the
section never raises.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rollout import Rollout

from ._timing import ns_per_call, seconds
from .checks import User, build_rollout, worst_case_user
from .cluster import (
    CHANGES,
    GAP_S,
    REDIS_URL,
    WARMUP,
    Latency,
    _group,
    _latency,
    _redis_group,
    _redis_problem,
    arrivals,
)

__all__ = [
    "BLOCK",
    "CHECK_ROUNDS",
    "PROCESSES",
    "WRITES",
    "CheckCost",
    "RedisChecks",
    "RedisFanOut",
    "RedisResults",
    "RedisWrites",
    "measure_redis",
]

#: Processes in the fan-out run: one writer (in turn) and 9 receivers, as the issue asks.
PROCESSES = 10
#: activate_user calls in the flat-writes run, timed in blocks of BLOCK.
WRITES = 10_000
BLOCK = 1_000
#: The fan-out run stops early (and says so) after this long, so a broken Redis cannot hold the
#: section for LOST_AFTER_S per change.
FAN_OUT_BUDGET_S = 30.0
#: Interleaved rounds of the check timings (each a best of REPEAT); the best round is kept.
CHECK_ROUNDS = 2

T = TypeVar("T")


@dataclass(frozen=True)
class RedisFanOut:
    processes: int
    changes: int  # changes measured (CHANGES unless the budget ran out)
    rollout: Latency  # activate() returned on the writer -> active() true at a receiver
    rollout_call: Latency  # the same, from just before activate() was called
    raw: Latency  # redis-py: just before PUBLISH -> message at a subscriber
    write_p50_ms: float  # how long activate() itself took on the writer (median)


@dataclass(frozen=True)
class CheckCost:
    """Nanoseconds per check, best of CHECK_ROUNDS interleaved rounds of best-of-REPEAT."""

    global_ns: float  # flags.active("on")
    user_ns: float  # flags.active("chat", user), the worst-case user


@dataclass(frozen=True)
class RedisChecks:
    memory: CheckCost
    redis: CheckCost
    worst_user_id: int


@dataclass(frozen=True)
class RedisWrites:
    calls: int
    block_mean_us: list[float]  # mean microseconds per call of each block of BLOCK calls
    block_p50_us: list[float]  # median of each block

    @property
    def ratio(self) -> float:
        """Mean per call of the last block over that of the first."""
        return self.block_mean_us[-1] / self.block_mean_us[0]


@dataclass(frozen=True)
class RedisResults:
    failure: str | None  # why the whole section was skipped
    fan_out: RedisFanOut | None
    checks: RedisChecks | None
    writes: RedisWrites | None
    problems: list[str]  # parts that failed, and why
    load_average: float  # the machine's 1-minute load average when the section started
    keys_left: int  # keys still under the section's namespaces after cleaning up
    seconds: float  # the whole section's wall time


def measure_redis() -> RedisResults:
    started = time.monotonic()
    load_average = os.getloadavg()[0]
    failure = _redis_problem()
    if failure is not None:
        _progress(f"redis: skipped: {failure}")
        return RedisResults(failure, None, None, None, [], load_average, 0, 0.0)
    problems: list[str] = []
    namespaces: list[str] = []

    def part(name: str, run: Callable[[str], T]) -> T | None:
        begun = time.monotonic()
        namespace = f"rollout-bench-{os.getpid()}-{time.monotonic_ns()}-{name}"
        namespaces.append(namespace)
        try:
            return run(namespace)
        except Exception as exc:  # reported, never raised: benchmarks report
            traceback.print_exc(file=sys.stderr)
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            return None
        finally:
            _delete_namespace(namespace)
            _progress(f"redis: {name} took {time.monotonic() - begun:.1f} s")

    _progress(f"redis: fan-out to {PROCESSES - 1} processes, Rollout and raw pub/sub")
    fan_out = part("fanout", _measure_fan_out)
    _progress("redis: check cost, Redis store against memory")
    checks = part("checks", _measure_checks)
    _progress(f"redis: {WRITES:,} activate_user calls to one flag")
    writes = part("writes", _measure_writes)
    keys_left = sum(_count_keys(namespace) for namespace in namespaces)
    elapsed = time.monotonic() - started
    return RedisResults(None, fan_out, checks, writes, problems, load_average, keys_left, elapsed)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _store_url(namespace: str) -> str:
    return f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}namespace={namespace}"


def _delete_namespace(namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1_000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    except (redis.RedisError, OSError) as exc:
        print(f"redis: could not delete {namespace}:*: {exc}", file=sys.stderr)
    finally:
        client.close()


def _count_keys(namespace: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=10)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{namespace}:*", count=1_000))
    finally:
        client.close()


# Fan-out latency ------------------------------------------------------------------------------


def _measure_fan_out(namespace: str) -> RedisFanOut:
    arguments = [["--mode", "redis-store", "--store", _store_url(namespace)]] * PROCESSES
    with (
        tempfile.TemporaryDirectory(prefix="rollout-bench-redis-") as tmp,
        _redis_group(PROCESSES, Path(tmp)) as (raw, raw_events),
        _group(arguments, Path(tmp)) as (nodes, node_events),
    ):
        for node in nodes:
            if not node.call("wait_synced", 10.0):
                raise TimeoutError(f"process {node.index} did not connect to Redis")
        rollout: list[int] = []
        rollout_call: list[int] = []
        reference: list[int] = []
        writes: list[int] = []
        lost = raw_lost = changes = 0
        deadline = time.monotonic() + FAN_OUT_BUDGET_S
        for change in range(WARMUP + CHANGES):
            if time.monotonic() > deadline:
                _progress(f"redis: fan-out stopped after {changes} changes ({FAN_OUT_BUDGET_S} s)")
                break
            measured = change >= WARMUP
            # Interleaved, so a slow moment of the machine hits both alike.
            sent: int = raw[change % PROCESSES].call("write", change)
            arrived, missing = arrivals(raw, raw_events, change % PROCESSES, change)
            if measured:
                reference += [seen - sent for seen in arrived]
                raw_lost += missing
            time.sleep(GAP_S)
            before, after = nodes[change % PROCESSES].call("write_span", change)
            arrived, missing = arrivals(nodes, node_events, change % PROCESSES, change)
            if measured:
                rollout += [seen - after for seen in arrived]
                rollout_call += [seen - before for seen in arrived]
                writes.append(after - before)
                lost += missing
                changes += 1
            time.sleep(GAP_S)
    return RedisFanOut(
        processes=PROCESSES,
        changes=changes,
        rollout=_latency(rollout, lost),
        rollout_call=_latency(rollout_call, lost),
        raw=_latency(reference, raw_lost),
        write_p50_ms=statistics.median(writes) / 1e6 if writes else float("nan"),
    )


# Check cost -----------------------------------------------------------------------------------


def _measure_checks(namespace: str) -> RedisChecks:
    memory = build_rollout(Rollout())
    stored = Rollout(_store_url(namespace))
    try:
        if not stored.wait_synced(10.0):
            raise TimeoutError("the Redis-backed Rollout did not connect to Redis")
        build_rollout(stored)
        user: User = worst_case_user(memory, [])
        if stored.active("chat", user) or not stored.active("on"):
            raise RuntimeError("the Redis-backed flags answer differently from the memory ones")
        best: dict[str, list[float]] = {"memory": [math.inf] * 2, "redis": [math.inf] * 2}
        # Interleaved rounds: a slow moment of the machine hits both stores alike.
        for _ in range(CHECK_ROUNDS):
            for label, flags in (("memory", memory), ("redis", stored)):
                scope: dict[str, object] = {"flags": flags, "user": user}
                for i, stmt in enumerate(('flags.active("on")', 'flags.active("chat", user)')):
                    best[label][i] = min(best[label][i], ns_per_call(stmt, scope))
    finally:
        stored.close()
        memory.close()
    return RedisChecks(CheckCost(*best["memory"]), CheckCost(*best["redis"]), user.id)


# Flat writes ----------------------------------------------------------------------------------


def _measure_writes(namespace: str) -> RedisWrites:
    flags = Rollout(_store_url(namespace))
    try:
        if not flags.wait_synced(10.0):
            raise TimeoutError("the Redis-backed Rollout did not connect to Redis")
        flags.activate_user("warm-up", 0)  # loads the Lua script into Redis
        per_call: list[int] = []

        def add_all() -> None:
            activate_user, clock, record = (
                flags.activate_user,
                time.perf_counter_ns,
                per_call.append,
            )
            for user in range(WRITES):
                start = clock()
                activate_user("big", user)
                record(clock() - start)

        seconds(add_all)  # gc off while it runs, as for every other timing
        listed = len(flags.get("big").users)
        if listed != WRITES:
            raise RuntimeError(f"big flag lists {listed} users, expected {WRITES}")
    finally:
        flags.close()
    blocks = [per_call[i : i + BLOCK] for i in range(0, len(per_call), BLOCK)]
    return RedisWrites(
        calls=len(per_call),
        block_mean_us=[statistics.fmean(b) / 1e3 for b in blocks],
        block_p50_us=[statistics.median(b) / 1e3 for b in blocks],
    )
