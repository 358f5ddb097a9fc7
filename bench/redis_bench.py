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
- writes by list size: ``activate_user("big", new user)`` on a Redis-backed ``Rollout`` whose
  flag already lists 0, 100,000 and 1,000,000 users, each call timed on its own, in interleaved
  rounds of ``SIZE_BLOCK`` calls per size (the best round's median, and the median of all
  calls: a median, since one call stalled by the shared machine moves a mean of 200).
  The big lists are filled the way another process would bulk-load them: ``RedisStore.save`` of
  ``FILL_CHUNK`` users at a time into Redis, which the ``Rollout``'s subscriber merges as it
  would any other process's change. A write is one round trip whatever the list's size, so the
  targets are <= ``WRITE_TARGET_US`` a call and within ``FLAT_RATIO`` of the empty flag.
  Next to them, timed the same way in the same rounds, the floor a write cannot go below: a
  plain redis-py PING round trip, and a redis-py EVALSHA of the same shape as a write (the
  same keys and arguments, byte for byte those of one of the timed writes, one INCR and one
  PUBLISH of the same message, an integer reply), but none of the save's merge, history or
  local work; its channel has no subscriber.

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
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS, USER
from rollout._core.state import Register
from rollout.redis import RedisStore

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
    "CHECK_ROUNDS",
    "FILL_CHUNK",
    "FLAT_RATIO",
    "LIST_SIZES",
    "PROCESSES",
    "SIZE_BLOCK",
    "SIZE_ROUNDS",
    "WRITE_TARGET_US",
    "CheckCost",
    "ListSizeWrites",
    "RedisChecks",
    "RedisFanOut",
    "RedisResults",
    "RedisWrites",
    "RoundTripFloor",
    "measure_redis",
]

#: Processes in the fan-out run: one writer (in turn) and 9 receivers, as the issue asks.
PROCESSES = 10
#: The users a flag lists when activate_user is timed on it.
LIST_SIZES = (0, 100_000, 1_000_000)
#: Interleaved rounds, each SIZE_BLOCK calls per list size, each call timed on its own.
SIZE_ROUNDS = 5
SIZE_BLOCK = 200
#: Users per RedisStore.save when filling a big list: one message of about 6 MB each.
FILL_CHUNK = 100_000
#: How long filling one list may take before the part gives up. 1,000,000 users take 30-60 s,
#: more when the subscriber's periodic version check (every 5 s) falls while a chunk's message is
#: on its way: it then reloads every flag (up to 1,000,000 users, about 10 s) instead of waiting.
FILL_TIMEOUT_S = 300.0
#: The targets (issue 15): a write <= 0.2 ms, flat in the list's size.
WRITE_TARGET_US = 200.0
FLAT_RATIO = 1.2
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
class ListSizeWrites:
    listed: int  # users the flag listed before the timed calls
    best_us: float  # the best round's median microseconds per call
    p50_us: float  # the median of every timed call
    fill_s: float  # how long filling the list took (0 for the empty flag)


@dataclass(frozen=True)
class RoundTripFloor:
    """Microseconds per call of the writes' floor, timed in the same rounds as the writes."""

    ping_best_us: float  # redis-py PING: the best round's median
    ping_p50_us: float  # ... the median of every call
    evalsha_best_us: float  # redis-py EVALSHA of a write's keys and arguments, INCR + PUBLISH
    evalsha_p50_us: float


@dataclass(frozen=True)
class RedisWrites:
    calls: int  # timed calls per list size
    sizes: list[ListSizeWrites]  # in LIST_SIZES order, the empty flag first
    floor: RoundTripFloor

    def ratio(self, size: ListSizeWrites) -> float:
        """A list size's best round over the empty flag's."""
        return size.best_us / self.sizes[0].best_us


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
    _progress(f"redis: activate_user on flags of {', '.join(f'{n:,}' for n in LIST_SIZES)} users")
    writes = part("sizes", _measure_list_sizes)
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
        _redis_group(PROCESSES, Path(tmp)) as (raw, _),
        _group(arguments, Path(tmp)) as (nodes, _),
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
            arrived, missing = arrivals(raw, change % PROCESSES, change)
            if measured:
                reference += [seen - sent for seen in arrived]
                raw_lost += missing
            time.sleep(GAP_S)
            before, after = nodes[change % PROCESSES].call("write_span", change)
            arrived, missing = arrivals(nodes, change % PROCESSES, change)
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


# Writes by list size ---------------------------------------------------------------------------


def _measure_list_sizes(namespace: str) -> RedisWrites:
    # One namespace per size under the part's own, so that its clean-up deletes them all.
    flags_by_size: dict[int, Rollout] = {}
    fill_s: dict[int, float] = {}
    floor: _Floor | None = None
    try:
        for listed in LIST_SIZES:
            flags = Rollout(_store_url(f"{namespace}:size-{listed}"))
            flags_by_size[listed] = flags
            if not flags.wait_synced(10.0):
                raise TimeoutError("the Redis-backed Rollout did not connect to Redis")
            fill_s[listed] = _fill(flags, f"{namespace}:size-{listed}", listed)
        floor = _Floor(namespace, flags_by_size[0], f"{namespace}:size-0")
        per_call: dict[int | str, list[int]] = {part: [] for part in (*LIST_SIZES, *_FLOORS)}
        block_medians: dict[int | str, list[float]] = {part: [] for part in per_call}
        for round_ in range(SIZE_ROUNDS):
            # Interleaved: a slow moment of the machine hits every size, and the floor, alike.
            timings: list[tuple[int | str, Callable[[], list[int]]]] = [
                (listed, _writes_of(flags, round_)) for listed, flags in flags_by_size.items()
            ]
            timings += [("ping", floor.time_pings), ("evalsha", floor.time_evalshas)]
            for part, time_block in timings:
                times = time_block()
                per_call[part] += times
                block_medians[part].append(statistics.median(times) / 1e3)
        for listed, flags in flags_by_size.items():
            # The empty flag's one more: the write the floor copied its arguments from.
            expected = listed + SIZE_ROUNDS * SIZE_BLOCK + (listed == 0)
            if len(flags.get("big").users) != expected:
                raise RuntimeError(f"the flag of {listed:,} users does not list {expected:,}")
    finally:
        for flags in flags_by_size.values():
            flags.close()
        if floor is not None:
            floor.client.close()
    return RedisWrites(
        calls=SIZE_ROUNDS * SIZE_BLOCK,
        sizes=[
            ListSizeWrites(
                listed=listed,
                best_us=min(block_medians[listed]),
                p50_us=statistics.median(per_call[listed]) / 1e3,
                fill_s=fill_s[listed],
            )
            for listed in LIST_SIZES
        ],
        floor=RoundTripFloor(
            *(
                value
                for part in _FLOORS
                for value in (
                    min(block_medians[part]),
                    statistics.median(per_call[part]) / 1e3,
                )
            )
        ),
    )


def _writes_of(flags: Rollout, round_: int) -> Callable[[], list[int]]:
    return lambda: _time_writes(flags, [f"new-{round_}-{i}" for i in range(SIZE_BLOCK)])


_FLOORS = ("ping", "evalsha")

#: The floor's script: a write's shape (its keys and arguments) with none of its merge.
_FLOOR_SCRIPT = """
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], version .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return version
"""


class _Floor:
    """A plain redis-py client timing PINGs and EVALSHAs of the shape of one of ``flags``'s
    writes, copied from Redis: the message it published and the registers it stored."""

    def __init__(self, namespace: str, flags: Rollout, flags_namespace: str) -> None:
        import json

        import redis

        self.client = redis.Redis.from_url(REDIS_URL, single_connection_client=True)
        listener = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            listener.subscribe(f"{flags_namespace}:changes")
            flags.activate_user("big", "floor-sample")
            message = None
            deadline = time.monotonic() + 10
            while message is None and time.monotonic() < deadline:
                message = listener.get_message(timeout=1.0)
        finally:
            listener.close()
        if message is None:
            raise TimeoutError("no message of a write to copy the floor's arguments from")
        _version, origin, change = message["data"].decode().split(" ", 2)
        keys = list(json.loads(change)["big"])
        packed = self.client.hmget(f"{flags_namespace}:flag:big", keys)
        self.keys = [f"{namespace}:floor:{part}" for part in ("flags", "version", "flag", "hist")]
        self.args = [f"{namespace}:floor:changes", origin, change, 100, "big", len(keys)]
        for key, value in zip(keys, packed, strict=True):
            self.args += [key, value]
        self.sha = self.client.script_load(_FLOOR_SCRIPT)

    def time_pings(self) -> list[int]:
        return _time_calls(self.client.ping)

    def time_evalshas(self) -> list[int]:
        client, sha, keys, args = self.client, self.sha, self.keys, self.args
        return _time_calls(lambda: client.evalsha(sha, len(keys), *keys, *args))


def _time_calls(call: Callable[[], object]) -> list[int]:
    """Nanoseconds of each of SIZE_BLOCK calls, gc off, as :func:`_time_writes` times writes."""
    times: list[int] = []

    def call_all() -> None:
        clock, record = time.perf_counter_ns, times.append
        for _ in range(SIZE_BLOCK):
            start = clock()
            call()
            record(clock() - start)

    seconds(call_all)
    return times


def _fill(flags: Rollout, namespace: str, listed: int) -> float:
    """List ``listed`` users on flag "big" (and create it), as another process bulk-loading it
    would: RedisStore.save in chunks, which ``flags`` hears and merges. Returns the seconds.

    Each chunk waits for ``flags`` to have merged the one before: Redis closes a subscriber
    whose unread messages pass its output limit (32 MB), and a reconnect means a full reload.
    """
    started = time.monotonic()
    deadline = started + FILL_TIMEOUT_S
    store = RedisStore.from_url(_store_url(namespace))
    try:
        # Stamped a second ago: older than every timed write, never "from the future".
        ts = Timestamp(int(time.time() * 1000) - 1_000, 0, 1)
        store.save({"big": {EXISTS: Register(ts, True)}})
        for start in range(0, listed, FILL_CHUNK):
            users = range(start, min(start + FILL_CHUNK, listed))
            store.save({"big": {f"{USER}listed-{i}": Register(ts, True) for i in users}})
            version = store.version()
            while flags.stats()["sync"]["version_seen"] < version:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the Rollout did not receive {listed:,} users in time")
                time.sleep(0.02)
    finally:
        store.close()
    return time.monotonic() - started if listed else 0.0


def _time_writes(flags: Rollout, users: list[str]) -> list[int]:
    """Nanoseconds of each ``activate_user("big", user)``, gc off (bench._timing.seconds)."""
    times: list[int] = []

    def write_all() -> None:
        activate_user, clock, record = flags.activate_user, time.perf_counter_ns, times.append
        for user in users:
            start = clock()
            activate_user("big", user)
            record(clock() - start)

    seconds(write_all)
    return times
