"""Counting rounds, to prove that something did *not* happen without sleeping on it.

A test that a partition, a wrong secret or a clock from the future lets nothing through must
wait until the thing had its chances; a fixed sleep is either too short on a loaded machine (the
test then passes without the chances having been taken) or wastes time on an idle one. Instead
the test waits until counters that rise once per chance (an anti-entropy round, a refused
connection) have risen a few times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def all_rise(counters: Sequence[Callable[[], int]], times: int) -> Callable[[], bool]:
    """A condition for ``eventually``: true once every counter has gone up ``times`` times
    since the condition was first checked (each read that finds it higher counts once)."""
    seen: list[list[int]] = [[] for _ in counters]

    def risen() -> bool:
        for read, values in zip(counters, seen, strict=True):
            value = read()
            if not values or value > values[-1]:
                values.append(value)
        return all(len(values) > times for values in seen)

    return risen
