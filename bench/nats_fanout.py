"""NATS: change fan-out latency to 10, 50 and 200 subscribing replicas.

``python -m bench.nats_fanout [--subscribers 10,50,200] [--changes 100]``, against the NATS at
``BENCH_NATS_URL`` (default ``nats://127.0.0.1:4222``), each size in a fresh namespace whose
stream is deleted afterwards.

The subscribers are ``Rollout(transport=NatsTransport(...))`` objects, each with its own NATS
connection and thread, spread over at most 10 child processes (more connections per process
where the machine runs out of processes, as the issue asks). One writer in this process makes
each change (``activate(f"f{i}")``) after a pause; a sample is, for every subscriber, the time
from ``activate()`` returning on the writer to that subscriber's callback seeing the flag
active. Times are CLOCK_MONOTONIC, one clock for the whole machine on Linux.

``make bench`` measures the same fan-out for peers, Redis, PostgreSQL and NATS in one table:
its ``fanout`` section (``bench.fanout_bench``, which uses this module's URL and clean-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")


def child(count: int, namespace: str) -> None:
    from rollout import Rollout
    from rollout.nats import NatsTransport

    seen: list[tuple[int, int]] = []  # (change, monotonic ns)
    lock = threading.Lock()
    replicas = []
    for _ in range(count):
        flags = Rollout(transport=NatsTransport(URL, namespace=namespace))

        def watch(changed: set[str], flags: Rollout = flags) -> None:
            now = time.monotonic_ns()
            with lock:
                seen.extend((int(name[1:]), now) for name in changed if flags.active(name))

        flags.subscribe(watch)
        replicas.append(flags)
    for flags in replicas:
        flags.wait_synced(30)
    print("ready", flush=True)
    sys.stdin.readline()  # "dump"
    with lock:
        print(json.dumps(seen), flush=True)
    for flags in replicas:
        flags.close()


def measure(subscribers: int, changes: int, gap: float) -> dict[str, float]:
    from rollout import Rollout
    from rollout.nats import NatsTransport

    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    processes = min(10, subscribers)
    sizes = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.nats_fanout", "--child", str(size), namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for size in sizes
    ]
    try:
        for process in children:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        written: dict[int, int] = {}
        with Rollout(transport=NatsTransport(URL, namespace=namespace)) as writer:
            writer.wait_synced(30)
            for i in range(changes):
                writer.activate(f"f{i}")
                written[i] = time.monotonic_ns()
                time.sleep(gap)
            time.sleep(1.0)
        latencies: list[float] = []
        for process in children:
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write("dump\n")
            process.stdin.flush()
            for change, at in json.loads(process.stdout.readline()):
                latencies.append((at - written[change]) / 1e6)
        latencies.sort()
        return {
            "subscribers": subscribers,
            "samples": len(latencies),
            "expected": subscribers * changes,
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        }
    finally:
        for process in children:
            process.wait(60)
        _delete_stream(f"ROLLOUT_{namespace}")


def _delete_stream(stream: str) -> None:
    import nats

    async def delete() -> None:
        nc = await nats.connect(URL, allow_reconnect=False)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(delete())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nats_fanout")
    parser.add_argument("--child", nargs=2, metavar=("COUNT", "NAMESPACE"))
    parser.add_argument("--subscribers", default="10,50,200")
    parser.add_argument("--changes", type=int, default=100)
    # Seconds between changes: long enough that the subscribers (Python, on this machine's
    # cores) are done with one change before the next; shorter measures a saturated machine.
    parser.add_argument("--gap", type=float, default=0.25)
    options = parser.parse_args()
    if options.child:
        child(int(options.child[0]), options.child[1])
        return
    print("| subscribers | samples | p50 | p99 |")
    print("| --- | --- | --- | --- |")
    for size in (int(n) for n in options.subscribers.split(",")):
        result = measure(size, options.changes, options.gap)
        print(
            f"| {size} | {result['samples']}/{result['expected']} | "
            f"{result['p50_ms']:.2f} ms | {result['p99_ms']:.2f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
