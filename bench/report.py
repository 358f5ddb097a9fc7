"""How results are shown: plain-text tables for the terminal, Markdown for ``bench/results.md``.

Benchmarks report, they do not assert: a missed target prints MISS and the run still succeeds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rollout._core.bucketing import MEMO_SIZE

from .checks import (
    BIG_LIST,
    USER_COUNT,
    WORLD_FLAGS,
    WORLD_RATIO,
    CheckResults,
    CheckTimes,
    WorldSize,
)
from .cluster import CHANGES, IDLE_S, QUIET_NOTE, WARMUP, ClusterResults, Latency
from .memory import MemoryResults
from .redis_bench import (
    CHECK_ROUNDS,
    FILL_CHUNK,
    FLAT_RATIO,
    SIZE_BLOCK,
    SIZE_ROUNDS,
    WRITE_TARGET_US,
    RedisChecks,
    RedisFanOut,
    RedisResults,
    RedisWrites,
)
from .writes import BIG, WriteTimes

__all__ = [
    "Table",
    "check_table",
    "cluster_latency_table",
    "cluster_node_table",
    "cluster_targets_table",
    "memory_table",
    "redis_tables",
    "targets_table",
    "world_size_table",
    "write_table",
]


@dataclass(frozen=True)
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        widths = [
            max(len(cell) for cell in column)
            for column in zip(self.headers, *self.rows, strict=True)
        ]

        def line(cells: list[str]) -> str:
            first, *rest = (
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            )
            return "  ".join([first, *rest]).rstrip()

        rule = "  ".join("-" * w for w in widths)
        body = [line(self.headers), rule, *(line(row) for row in self.rows)]
        return "\n".join([self.title, "=" * len(self.title), *body, *self.notes])

    def markdown(self) -> str:
        align = ["---", *("---:" for _ in self.headers[1:])]
        rows = [self.headers, align, *self.rows]
        body = ["| " + " | ".join(cell.replace("|", r"\|") for cell in row) + " |" for row in rows]
        notes = [f"\n{note}" for note in self.notes]
        return "\n".join([f"### {self.title}", "", *body, *notes])


def _ns(value: float) -> str:
    return f"{value:,.0f}"


def _x(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def check_table(results: CheckResults) -> Table:
    base, loop_base = results.baseline_ns, results.baseline_loop_ns
    ours = results.rollout
    worst = f"worst case (user {results.worst_user_id})"
    rows = [
        ['baseline: baseline("on"), one dict.get', _ns(base), _x(1.0), ""],
        [f"baseline, per item of a loop over {USER_COUNT:,} users", _ns(loop_base), _x(1.0), ""],
        [
            "floor of a check with 3 groups: baseline + the 3 predicates called",
            _ns(results.floor_ns),
            _x(results.floor_ns / base),
            "",
        ],
        ['rollout global: flags.active("on")', _ns(ours.global_ns), _x(ours.global_ns / base), ""],
    ]
    for label, ns, against in (
        (f"without groups, {worst}", ours.percent_ns, base),
        (f"without groups, mean of {USER_COUNT:,} users", ours.percent_mean_ns, loop_base),
        (
            f"without groups, mean of {3 * MEMO_SIZE:,} users never seen before",
            results.new_users_mean_ns,
            loop_base,
        ),
        (f"with 3 groups, {worst}", ours.user_ns, base),
        (f"with 3 groups, mean of {USER_COUNT:,} users", ours.user_mean_ns, loop_base),
    ):
        rows.append([f"rollout per-user {label}", _ns(ns), _x(ns / against), ""])
    python = results.python
    if python is not None:
        for label, ns, against in (
            ('global: flags.active("on")', python.global_ns, base),
            (f"per-user without groups, {worst}", python.percent_ns, base),
            (
                f"per-user without groups, mean of {USER_COUNT:,} users",
                python.percent_mean_ns,
                loop_base,
            ),
            (f"per-user with 3 groups, {worst}", python.user_ns, base),
            (
                f"per-user with 3 groups, mean of {USER_COUNT:,} users",
                python.user_mean_ns,
                loop_base,
            ),
        ):
            rows.append([f"rollout, pure Python, {label}", _ns(ns), _x(ns / against), ""])
    for library, peer in results.peers.items():
        rows.append([f"{library} global", *_peer_cells(peer.global_ns, base, ours.global_ns)])
        for label, theirs, mine, against in (
            ("without groups, worst case", peer.percent_ns, ours.percent_ns, base),
            ("without groups, mean", peer.percent_mean_ns, ours.percent_mean_ns, loop_base),
            ("with 3 groups, worst case", peer.user_ns, ours.user_ns, base),
            ("with 3 groups, mean", peer.user_mean_ns, ours.user_mean_ns, loop_base),
        ):
            rows.append([f"{library} per-user {label}", *_peer_cells(theirs, against, mine)])
    notes = (
        "Per-user without groups: a 20% flag. With 3 groups: a 20% flag with 3 groups (admins, "
        "beta, staff), one predicate (rollout) or one attribute condition (peers) each; users "
        "are in none of them. Worst case: a user outside the 20% of both flags for every "
        "library, so every rule runs.",
        f"Means: a loop over the same {USER_COUNT:,} users for every library, less the empty "
        "loop's cost, per user; compared with the baseline timed the same way. Rollout keeps "
        f"the buckets of the last {MEMO_SIZE:,} ids or so; the users never seen before are "
        "more than that, so every one of their checks computes its bucket.",
        f"rollout: the check as installed, here the {_implementation(results)}; "
        "pure Python: the fallback where no C compiler built the accelerator "
        "(or ROLLOUT_PURE_PYTHON=1), timed in the same run.",
        "x rollout: how many times slower than rollout's same check.",
        *(f"Peer not set up: {failure}" for failure in results.failures),
    )
    return Table("Checks", ["check", "ns/check", "x baseline", "x rollout"], rows, notes)


def _implementation(results: CheckResults) -> str:
    if results.implementation == "C":
        return "C accelerator (rollout._core._speedups)"
    return "pure-Python check (the C accelerator is not built)"


def check_targets_table(checks: CheckResults) -> Table:
    """The check's targets (issue 15): ratios to the baseline and to the fastest peer."""
    base, loop_base, ours = checks.baseline_ns, checks.baseline_loop_ns, checks.rollout
    rows: list[list[str]] = []

    def target(text: str, measured: float, limit: float, *, at_least: bool = False) -> None:
        ok = measured >= limit if at_least else measured <= limit
        rows.append([text, _x(measured), _verdict(ok)])

    target("global check <= 1.5x baseline", ours.global_ns / base, 1.5)
    target("per-user without groups (worst case) <= 4x baseline", ours.percent_ns / base, 4)
    target("per-user without groups (mean) <= 4x baseline", ours.percent_mean_ns / loop_base, 4)
    target(
        f"per-user with 3 groups (worst case) <= 8x baseline (floor {checks.floor_ns / base:.2f}x)",
        ours.user_ns / base,
        8,
    )
    target("per-user with 3 groups (mean) <= 8x baseline", ours.user_mean_ns / loop_base, 8)
    for what, pick in (
        ("global check", _global),
        ("per-user without groups (worst case)", _percent),
        ("per-user without groups (mean)", _percent_mean),
        ("per-user with 3 groups (worst case)", _user),
        ("per-user with 3 groups (mean)", _user_mean),
    ):
        if checks.peers:
            library, fastest = min(checks.peers.items(), key=lambda item: pick(item[1]))
            ratio = pick(fastest) / pick(ours)
            target(f"{what} >= 20x faster than fastest peer ({library})", ratio, 20, at_least=True)
        else:
            rows.append([f"{what} >= 20x faster than fastest peer", "no peer", _verdict(None)])
    return Table("Check targets", ["target", "measured", "result"], rows)


def _peer_cells(ns: float, base: float, ours: float) -> list[str]:
    return [_ns(ns), _x(ns / base), _x(ns / ours)]


def write_table(results: list[WriteTimes]) -> Table:
    rows = [[w.store, f"{w.empty_us:.1f}", f"{w.big_us:.1f}", _x(w.ratio)] for w in results]
    headers = ["store", "empty flag, us/call", f"flag with {BIG:,} users, us/call", "ratio"]
    notes = (
        "activate_user adding fresh users one call at a time (best of the repeats); on SQLite "
        "each call is also one committed transaction.",
    )
    return Table("Writes: activate_user", headers, rows, notes)


def memory_table(results: MemoryResults) -> Table:
    rows = [
        [
            label,
            f"{p.rss_before_mb:.1f}",
            f"{p.rss_mb:.1f}",
            "n/a" if p.peak_mb is None else f"{p.peak_mb:.1f}",
            f"{p.seconds:.2f}",
        ]
        for label, p in (
            (f"write 1,000 flags + 1 flag of {BIG:,} users", results.build),
            ("reopen: Rollout(sqlite:///big.db)", results.reopen),
        )
    ]
    headers = ["fresh process", "RSS before, MB", "RSS after, MB", "peak RSS, MB", "seconds"]
    notes = (
        "RSS before: the interpreter with rollout and psutil imported, no flags yet; peak: "
        "the highest RSS during the work (VmHWM). "
        f"The SQLite file (with WAL) is {results.file_mb:.1f} MB.",
    )
    return Table("Memory (SQLite store)", headers, rows, notes)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "MISS"


def targets_table(writes: list[WriteTimes], memory: MemoryResults) -> Table:
    rows: list[list[str]] = []

    def target(text: str, measured: str, ok: bool | None) -> None:
        rows.append([text, measured, _verdict(ok)])

    for w in writes:
        target(
            f"activate_user, {BIG:,}-user flag <= 2x empty flag ({w.store})",
            _x(w.ratio),
            w.ratio <= 2,
        )
    target(
        f"RSS, 1,000 flags + {BIG:,} users written < 100 MB",
        f"{memory.build.rss_mb:.1f} MB",
        memory.build.rss_mb < 100,
    )
    peaks = [p.peak_mb for p in (memory.build, memory.reopen) if p.peak_mb is not None]
    if peaks:
        target("peak RSS of either process < 100 MB", f"{max(peaks):.1f} MB", max(peaks) < 100)
    else:
        target("peak RSS of either process < 100 MB", "unknown", None)
    target(
        "RSS after reopening that file < 100 MB",
        f"{memory.reopen.rss_mb:.1f} MB",
        memory.reopen.rss_mb < 100,
    )
    target(
        "reopening that SQLite file < 1 s",
        f"{memory.reopen.seconds:.2f} s",
        memory.reopen.seconds < 1,
    )
    return Table("Targets", ["target", "measured", "result"], rows)


def _global(times: CheckTimes) -> float:
    return times.global_ns


def _percent(times: CheckTimes) -> float:
    return times.percent_ns


def _percent_mean(times: CheckTimes) -> float:
    return times.percent_mean_ns


def _user(times: CheckTimes) -> float:
    return times.user_ns


def _user_mean(times: CheckTimes) -> float:
    return times.user_mean_ns


# Cluster ----------------------------------------------------------------------------------------

#: The issue's fan-out targets per node count: (p50 ms, p99 ms).
_FAN_OUT_TARGETS = {3: (0.5, 3.0), 10: (2.0, 10.0)}


def _ms(value: float) -> str:
    return f"{value:.2f}"


def cluster_latency_table(results: ClusterResults) -> Table:
    rows = []
    for run in results.latency:
        ours, redis = run.rollout, run.redis
        rows.append(
            [
                f"{run.nodes} nodes, {run.store} stores",
                f"{ours.samples:,}",
                str(ours.lost),
                _ms(ours.p50_ms),
                _ms(ours.p99_ms),
                _ms(ours.max_ms),
                "n/a" if run.from_call is None else _ms(run.from_call.p50_ms),
                "n/a" if run.from_call is None else _ms(run.from_call.p99_ms),
                "n/a" if redis is None else _ms(redis.p50_ms),
                "n/a" if redis is None else _ms(redis.p99_ms),
                "n/a" if redis is None else _ms(redis.max_ms),
            ]
        )
    headers = [
        "cluster",
        "samples",
        "lost",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p50 ms from call",
        "p99 ms from call",
        "Redis p50 ms",
        "Redis p99 ms",
        "Redis max ms",
    ]
    notes = (
        f"{CHANGES} changes (after {WARMUP} unmeasured), each activate() on the next node in "
        "turn; one sample per change and other node: from activate() returning on the writer to "
        "the receiver's subscriber seeing the flag active (the writer's store holds it; the "
        "receiver's commits it right after). Real processes, "
        "loopback TCP, shared secret; times are CLOCK_MONOTONIC read inside the nodes.",
        QUIET_NOTE,
        "From call: the same samples from just before activate() was called on the writer, which "
        "sends the change to its peers before activate() returns: the writer's whole path.",
        "Redis: the same number of processes on one channel with redis-py's plain pub/sub (no "
        "flag state): from just before PUBLISH to the message reaching each other subscriber; "
        "measured in the same run.",
        f"All nodes share this machine's {os.cpu_count()} CPUs; its 1-minute load average was "
        f"{results.load_average:.2f} when the cluster section started.",
        *([f"Redis column skipped: {results.redis_failure}"] if results.redis_failure else []),
    )
    return Table("Cluster: change fan-out latency", headers, rows, notes)


def cluster_node_table(results: ClusterResults) -> Table:
    catch, idle = results.catch_up, results.idle
    rows = [
        [f"catch-up to {catch.flags:,} flags: process start -> holds them all", _s(catch.start_s)],
        [f"catch-up: Rollout() returned -> holds all {catch.flags:,}", _s(catch.built_s)],
        [
            f"catch-up: first peer connected -> holds all {catch.flags:,}",
            "n/a" if catch.connected_s is None else _s(catch.connected_s),
        ],
        ["catch-up: process start -> wait_synced() returned", _s(catch.synced_s)],
        [
            f"idle CPU over {idle.seconds:.0f} s, per node (% of one CPU)",
            ", ".join(f"{c:.2f}" for c in idle.cpu_percent),
        ],
        [f"RSS, node with replication, {catch.flags:,} flags", f"{idle.rss_mb:.1f} MB"],
        ["RSS, same writes without replication", f"{idle.alone_rss_mb:.1f} MB"],
        ["RSS added by replication", f"{idle.rss_mb - idle.alone_rss_mb:.1f} MB"],
    ]
    notes = (
        f"Catch-up: a 3-node cluster (memory stores) holding {catch.flags:,} flags of 3 users "
        "each; a new node with an empty SQLite file lists one of them as its only peer.",
        f"Idle: that 4-node cluster, nothing written for {IDLE_S:.0f} s, anti-entropy every 1 s "
        "(psutil CPU time / wall time). RSS after gc.collect(): the node that wrote the "
        "flags against a fresh process doing the same writes with no listen/peers.",
    )
    return Table("Cluster: catch-up and idle cost", ["measure", "value"], rows, notes)


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def cluster_targets_table(results: ClusterResults) -> Table:
    rows: list[list[str]] = []

    def target(text: str, measured: str, ok: bool | None) -> None:
        rows.append([text, measured, _verdict(ok)])

    for run in results.latency:
        limits = _FAN_OUT_TARGETS.get(run.nodes)
        if limits is None:
            continue
        p50, p99 = limits
        ours = run.rollout
        where = f"{run.nodes} nodes, {run.store}"
        target(f"fan-out p50 < {p50:g} ms ({where})", f"{_ms(ours.p50_ms)} ms", ours.p50_ms < p50)
        target(f"fan-out p99 < {p99:g} ms ({where})", f"{_ms(ours.p99_ms)} ms", ours.p99_ms < p99)
        target(f"no change lost ({where})", f"{ours.lost} lost", ours.lost == 0)
    catch, idle = results.catch_up, results.idle
    target(
        f"catch-up of a new node to {catch.flags:,} flags < 1 s (from process start)",
        _s(catch.start_s),
        catch.start_s < 1,
    )
    busiest = max(idle.cpu_percent)
    target("idle node CPU < 1% (busiest node)", f"{busiest:.2f}%", busiest < 1)
    added = idle.rss_mb - idle.alone_rss_mb
    target("replication adds < 10 MB RSS", f"{added:.1f} MB", added < 10)
    return Table("Cluster targets", ["target", "measured", "result"], rows)


# Redis ------------------------------------------------------------------------------------------


def redis_tables(results: RedisResults) -> list[Table]:
    """The Redis section: fan-out latency, check and write cost, targets; or why it was skipped."""
    if results.failure is not None:
        return [
            Table(
                "Redis",
                ["section", "result"],
                [["Redis store and pub/sub", "skipped"]],
                (f"Skipped: {results.failure}",),
            )
        ]
    tables = []
    if results.fan_out is not None:
        tables.append(_redis_latency_table(results.fan_out, results.load_average))
    if results.checks is not None:
        tables.append(_redis_check_table(results.checks))
    if results.writes is not None:
        tables.append(_redis_write_table(results.writes, results.load_average))
    tables.append(_redis_targets_table(results))
    return tables


def _redis_latency_table(fan: RedisFanOut, load_average: float) -> Table:
    receivers = fan.processes - 1

    def row(label: str, latency: Latency) -> list[str]:
        return [
            label,
            f"{latency.samples:,}",
            str(latency.lost),
            _ms(latency.p50_ms),
            _ms(latency.p99_ms),
            _ms(latency.max_ms),
            _x(latency.p50_ms / fan.raw.p50_ms),
            _x(latency.p99_ms / fan.raw.p99_ms),
        ]

    rows = [
        row("rollout: activate() returned -> active() true", fan.rollout),
        row("rollout: activate() called -> active() true", fan.rollout_call),
        row(f"raw redis-py: PUBLISH -> message at {receivers} subscribers", fan.raw),
    ]
    headers = [
        "from -> to",
        "samples",
        "lost",
        "p50 ms",
        "p99 ms",
        "max ms",
        "x raw p50",
        "x raw p99",
    ]
    notes = (
        f'{fan.processes} processes, each a Rollout("redis://...?namespace=NS") with its pub/sub '
        f"subscriber; {fan.changes} changes (after {WARMUP} unmeasured), each activate() by the "
        f"next process in turn; one sample per change and each of the {receivers} others, when "
        "its subscriber sees the flag active. CLOCK_MONOTONIC read inside the processes.",
        QUIET_NOTE,
        f"activate() itself took {_ms(fan.write_p50_ms)} ms (median) on the writer: Redis "
        "publishes from inside the save's Lua script, before the writer has its reply, so the "
        "first row can start after the receivers already have the change.",
        f"Raw: {fan.processes} plain redis-py pub/sub processes on one channel (no flag state), "
        "from just before PUBLISH; interleaved change by change with the rollout run.",
        f"All processes and Redis share this machine's {os.cpu_count()} CPUs; its 1-minute load "
        f"average was {load_average:.2f} when the Redis section started.",
    )
    return Table("Redis: change fan-out latency", headers, rows, notes)


def _redis_check_table(checks: RedisChecks) -> Table:
    memory, redis = checks.memory, checks.redis
    rows = [
        ['flags.active("on")', _ns(memory.global_ns), _ns(redis.global_ns)],
        [
            f'flags.active("chat", user), worst case (user {checks.worst_user_id})',
            _ns(memory.user_ns),
            _ns(redis.user_ns),
        ],
    ]
    for row, (m, r) in zip(
        rows, ((memory.global_ns, redis.global_ns), (memory.user_ns, redis.user_ns)), strict=True
    ):
        row.append(_x(r / m))
    notes = (
        "The flags of the Checks table (a 20% flag with 3 groups, a user in none of them and "
        "outside the 20%) written to a Redis-backed Rollout and to an in-memory one; "
        f"best of {CHECK_ROUNDS} interleaved rounds, each timed like the Checks table.",
    )
    headers = ["check", "memory store, ns", "Redis store, ns", "ratio"]
    return Table("Redis: check cost against the memory store", headers, rows, notes)


def _redis_write_table(writes: RedisWrites, load_average: float) -> Table:
    rows = [
        [
            f"{size.listed:,}",
            f"{size.best_us:.1f}",
            f"{size.p50_us:.1f}",
            _x(writes.ratio(size)),
            f"{size.fill_s:.1f}" if size.listed else "-",
        ]
        for size in writes.sizes
    ]
    floor = writes.floor
    empty = writes.sizes[0].best_us
    for label, best, p50 in (
        ("floor: redis-py EVALSHA, a write's shape", floor.evalsha_best_us, floor.evalsha_p50_us),
        ("floor: redis-py PING", floor.ping_best_us, floor.ping_p50_us),
    ):
        rows.append([label, f"{best:.1f}", f"{p50:.1f}", f"empty: {_x(empty / best)}", "-"])
    notes = (
        f'activate_user("big", a new user) on a Redis-backed Rollout whose flag lists that many '
        f"users, {writes.calls:,} calls per size, each timed on its own (gc off), in "
        f"{SIZE_ROUNDS} interleaved rounds of {SIZE_BLOCK}: the best round's median, and the "
        "median of every call. Every call is one EVALSHA (the merge, the history event and the "
        "publish, in Redis) and its reply.",
        "The floor rows, timed the same way in the same rounds on a plain redis-py client of "
        "one connection: an EVALSHA of a script that takes a write's keys and arguments (those "
        "of one of the timed writes, byte for byte) and only INCRs and PUBLISHes its message, "
        "on a channel nobody hears (no merge, history or local work, no echo to a "
        "subscriber), and a PING. Their 'x empty' column is the empty flag's write over them.",
        f"The lists were filled through RedisStore.save, {FILL_CHUNK:,} users at a time, and "
        "reached the Rollout through its subscriber, as another process's bulk load would.",
        f"Redis and the client share this machine's {os.cpu_count()} CPUs; its 1-minute load "
        f"average was {load_average:.2f} when the Redis section started.",
    )
    return Table(
        "Redis: activate_user by the flag's list size",
        ["users listed", "best round p50 us/call", "p50 us/call", "x empty", "fill s"],
        rows,
        notes,
    )


def _redis_targets_table(results: RedisResults) -> Table:
    rows: list[list[str]] = []

    def target(text: str, measured: str, ok: bool | None) -> None:
        rows.append([text, measured, _verdict(ok)])

    fan = results.fan_out
    if fan is not None:
        for what, ours, raw in (
            ("p50", fan.rollout.p50_ms, fan.raw.p50_ms),
            ("p99", fan.rollout.p99_ms, fan.raw.p99_ms),
        ):
            target(
                f"fan-out {what} within 2x of raw pub/sub {what}",
                f"{_ms(ours)} vs {_ms(raw)} ms ({_x(ours / raw)})",
                ours <= 2 * raw,
            )
        target("no change lost", f"{fan.rollout.lost} lost", fan.rollout.lost == 0)
    else:
        target("fan-out within 2x of raw pub/sub", "not measured", None)
    checks = results.checks
    if checks is not None:
        for what, redis, memory in (
            ("global check", checks.redis.global_ns, checks.memory.global_ns),
            ("per-user check", checks.redis.user_ns, checks.memory.user_ns),
        ):
            target(f"{what} <= 1.2x the memory store's", _x(redis / memory), redis <= 1.2 * memory)
    else:
        target("checks <= 1.2x the memory store's", "not measured", None)
    writes = results.writes
    if writes is not None:
        for size in writes.sizes:
            target(
                f"activate_user <= {WRITE_TARGET_US / 1000:g} ms, {size.listed:,} users listed",
                f"{size.best_us / 1000:.3f} ms",
                size.best_us <= WRITE_TARGET_US,
            )
        worst = max(writes.sizes[1:], key=writes.ratio)
        target(
            f"activate_user flat: {worst.listed:,} users listed <= {FLAT_RATIO:g}x the empty flag",
            _x(writes.ratio(worst)),
            writes.ratio(worst) <= FLAT_RATIO,
        )
    else:
        target("activate_user <= 0.2 ms and flat in the list's size", "not measured", None)
    notes = (
        f"The section took {results.seconds:.0f} s; {results.keys_left} keys were left in its "
        "Redis namespaces after cleaning up.",
        *(f"Not measured: {problem}" for problem in results.problems),
    )
    return Table("Redis targets", ["target", "measured", "result"], rows, notes)


def world_size_table(world: WorldSize) -> Table:
    """Check time in a small world and a large one, with the issue's 1.2x target."""
    rows = []
    for label, small, large in (
        (
            f'flags.active("chat", user): 1 flag vs {WORLD_FLAGS:,} flags',
            world.one_flag_ns,
            world.many_flags_ns,
        ),
        (
            f"a listed user: 3-user flag vs {BIG_LIST:,}-user flag",
            world.short_list_ns,
            world.long_list_ns,
        ),
    ):
        ratio = large / small
        rows.append([label, _ns(small), _ns(large), _x(ratio), _verdict(ratio <= WORLD_RATIO)])
    headers = ["check", "small, ns", "large, ns", "ratio", f"<= {WORLD_RATIO}x"]
    notes = (
        "The same check in a Rollout holding one flag (or listing 3 users) and in one holding "
        "many (or listing many); best of two interleaved rounds of 5 repeats each.",
    )
    return Table("Checks: the size of the world", headers, rows, notes)
