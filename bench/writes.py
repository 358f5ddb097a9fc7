"""Write cost: ``activate_user`` on a flag that lists 100,000 users vs on an empty flag.

The Ruby gem stores a flag's users as one string and rewrites all of it on every add, so its
``activate_user`` slows down as the list grows. Here each user is its own register, so adding one
should cost about the same whatever the flag already holds. Measured on an in-memory Rollout and
on an SQLite store (where every call is also one committed transaction).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rollout import Rollout

from ._timing import REPEAT, seconds

__all__ = ["ADDS", "BIG", "WriteTimes", "measure_writes"]

BIG = 100_000  # users listed on the big flag before timing
ADDS = 2_000  # fresh users added per repeat, one activate_user call each


@dataclass(frozen=True)
class WriteTimes:
    store: str
    empty_us: float  # microseconds per activate_user on a flag that starts empty
    big_us: float  # ... on a flag that already lists BIG users

    @property
    def ratio(self) -> float:
        return self.big_us / self.empty_us


def measure_writes() -> list[WriteTimes]:
    results = [_measure("memory", Rollout())]
    with tempfile.TemporaryDirectory(prefix="rollout-bench-writes-") as tmp:
        results.append(_measure("sqlite", Rollout(f"sqlite:///{Path(tmp) / 'writes.db'}")))
    return results


def _measure(store: str, flags: Rollout) -> WriteTimes:
    try:
        flags.activate_users("big", range(BIG))
        fresh = iter(range(10 * BIG, 100 * BIG))  # ids never listed anywhere before

        def add_to(name: str) -> None:
            users = [next(fresh) for _ in range(ADDS)]
            activate_user = flags.activate_user
            for user in users:
                activate_user(name, user)

        big: list[float] = []
        empty: list[float] = []
        # Interleaved, so a slow moment of the machine hits both sides alike. Every repeat
        # adds to its own new flag, so "empty" really starts empty each time.
        for i in range(REPEAT):
            flags.set(f"empty-{i}", False)  # exists (set creates it), lists nobody
            big.append(seconds(partial(add_to, "big")))
            empty.append(seconds(partial(add_to, f"empty-{i}")))
        listed = len(flags.get("big").users)
        if listed != BIG + REPEAT * ADDS:
            raise RuntimeError(f"big flag lists {listed} users, expected {BIG + REPEAT * ADDS}")
    finally:
        flags.close()
    return WriteTimes(store, min(empty) / ADDS * 1e6, min(big) / ADDS * 1e6)
