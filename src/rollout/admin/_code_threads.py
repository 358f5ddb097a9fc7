"""The worker threads on which a read runs the application's code: a group's predicate, or a
named rule or a targeting rule (the check, explain, evaluate and OFREP's evaluations).

They are counted by a limiter of their own (:data:`CODE_THREADS` at a time), apart from the
default one (anyio's 40) that the writes and the other reads that may block (a store, the
replication thread) take theirs from. A predicate may be slow, or hang (a call to a service
without a time-out); with one limiter for both, 40 checks of such a flag held every thread, and
every write, ``explain`` of any flag and page of users waited behind them: a client allowed only
to evaluate flags could stop the operators' writes. Now such checks queue behind one another,
and nothing else does.

The limiter is one per event loop (as anyio's default one is), shared by every app the loop
serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar, TypeVarTuple, Unpack

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

__all__ = ["CODE_THREADS", "code_limiter", "run_code"]

T = TypeVar("T")
Args = TypeVarTuple("Args")

#: How many reads may run the application's code at once (as many as anyio's default threads,
#: which the rest keep for themselves).
CODE_THREADS: Final = 40

_LIMITER: RunVar[CapacityLimiter] = RunVar("rollout_code_threads")


def code_limiter() -> CapacityLimiter:
    """The running event loop's limiter of threads that run the application's code."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(CODE_THREADS)
        _LIMITER.set(limiter)
        return limiter


async def run_code(function: Callable[[Unpack[Args]], T], *args: *Args) -> T:
    """``function(*args)`` on a worker thread counted by :func:`code_limiter`."""
    return await anyio.to_thread.run_sync(function, *args, limiter=code_limiter())
