"""Subscribers of ``bench.fanout_bench``: many ``Rollout`` replicas in one process.

``python -m bench.fanout_child CONFIG_JSON`` builds one replica per entry of the config's
``replicas`` (each with its own connections and sync thread, as separate processes would have),
waits until every one is synced (peers: connected to every other node), prints ``ready``, then:

- every replica's subscriber takes ``time.monotonic_ns()`` the first time it sees flag ``fI``
  active and keeps it here (nothing is printed per replica, so the pipe to the parent costs
  nothing while the others are still receiving);
- once every replica of this process has seen change ``I`` it prints ``done I``, so the parent
  makes the next change only when the last one has arrived everywhere;
- ``dump`` on stdin: print every ``[replica, I, ns]`` seen, as one JSON line, close and exit.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from rollout import Rollout


def build(backend: str, config: dict[str, Any], replica: dict[str, Any]) -> Rollout:
    """One replica of ``backend``; the parent's writer is built by the same function."""
    if backend == "nats":
        from rollout.nats import NatsTransport

        return Rollout(transport=NatsTransport(config["nats_url"], namespace=config["namespace"]))
    if backend == "peers":
        listen: str = replica["listen"]
        peers = [address for address in config["addresses"] if address != listen]
        return Rollout("memory://", listen=listen, peers=peers, secret=config["secret"])
    return Rollout(config["store"])  # redis, postgres: the store and its default transport


def ready(backend: str, flags: Rollout, others: int, timeout: float) -> None:
    """Wait until ``flags`` is synced (and, for peers, connected to its ``others``)."""
    deadline = time.monotonic() + timeout
    if not flags.wait_synced(timeout):
        raise TimeoutError(f"a {backend} replica did not sync within {timeout} s")
    while backend == "peers" and (flags.stats()["sync"] or {}).get("peers_connected", 0) < others:
        if time.monotonic() > deadline:
            raise TimeoutError(f"a peer did not connect to its {others} peers in {timeout} s")
        time.sleep(0.05)


def main() -> None:
    config: dict[str, Any] = json.loads(sys.argv[1])
    backend: str = config["backend"]
    entries: list[dict[str, Any]] = config["replicas"]
    seen: list[tuple[int, int, int]] = []  # (replica, change, monotonic ns)
    counts: dict[int, int] = {}
    lock = threading.Lock()
    out = threading.Lock()
    replicas: list[Rollout] = []

    for index, entry in enumerate(entries):
        flags = build(backend, config, entry)
        noticed: set[str] = set()

        def watch(
            changed: set[str],
            flags: Rollout = flags,
            index: int = index,
            noticed: set[str] = noticed,
        ) -> None:
            now = time.monotonic_ns()
            for name in changed:
                if name in noticed or not flags.active(name):
                    continue
                noticed.add(name)
                change = int(name[1:])
                with lock:
                    seen.append((index, change, now))
                    counts[change] = counts.get(change, 0) + 1
                    everyone = counts[change] == len(entries)
                if everyone:
                    with out:
                        print(f"done {change}", flush=True)

        flags.subscribe(watch)
        replicas.append(flags)
    for flags in replicas:
        ready(backend, flags, len(config["addresses"]) - 1, 120.0)
    print("ready", flush=True)
    sys.stdin.readline()  # "dump"
    with lock:
        dump = json.dumps(seen)
    with out:
        print(dump, flush=True)
    for flags in replicas:
        flags.close()


if __name__ == "__main__":
    main()
