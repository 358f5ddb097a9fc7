"""How a time is measured: ``timeit``, best of several repeats, each repeat about 0.2 s.

Statements are given as source text and run by :class:`timeit.Timer` in a namespace of globals,
so ``flags.active("on")`` is timed exactly as an application writes it: a global name, an
attribute lookup and a call, with no pre-bound local. Like ``timeit``, the garbage collector is
off while a repeat runs; the best repeat is the one least disturbed by the rest of the machine.
"""

from __future__ import annotations

import gc
import os
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["QUICK", "REPEAT", "ns_per_call", "ns_per_item", "seconds"]

#: ``make bench-quick`` (BENCH_QUICK=1): fewer repeats and only the fastest peer, so a change
#: can be measured before and after in under a minute.
QUICK = os.environ.get("BENCH_QUICK", "") == "1"
#: Repeats per measurement; the minimum is reported.
REPEAT = 3 if QUICK else 5


def ns_per_call(
    stmt: str,
    namespace: Mapping[str, Any],
    *,
    repeat: int = REPEAT,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Nanoseconds per execution of ``stmt``, best of ``repeat`` repeats of about 0.2 s each.

    ``Timer.autorange`` picks the number of executions per repeat (1, 2, 5, 10, 20, ... until a
    run takes at least 0.2 s); its runs also warm up caches. ``clock``: wall-clock time unless
    told (``time.thread_time``: the thread's CPU time, which other processes disturb less).
    """
    timer = timeit.Timer(stmt, globals=dict(namespace), timer=clock)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def ns_per_item(
    body: str, namespace: Mapping[str, Any], items: Sequence[Any], *, repeat: int = REPEAT
) -> float:
    """Nanoseconds per item of ``for item in items: <body>``, less the empty loop's cost per item.

    The loop runs inside timeit's function, so ``item`` is a fast local; the empty loop
    (``for item in items: pass``) over the same list is measured the same way and subtracted,
    leaving what ``body`` itself costs, on average over the items.
    """
    scope = {**namespace, "_items": items}
    loop = ns_per_call(f"for item in _items:\n    {body}", scope, repeat=repeat)
    empty = ns_per_call("for item in _items:\n    pass", scope, repeat=repeat)
    return (loop - empty) / len(items)


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one ``run()``, with the garbage collector off as in ``timeit``.

    For work that cannot simply be repeated (each write must add new users), the caller gives
    every repeat fresh input and keeps the best time itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()
