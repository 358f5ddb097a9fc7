"""The worker threads on which a read runs the application's code: a group's predicate, or a
named rule or a targeting rule (the check, explain, evaluate and OFREP's evaluations).

They are counted by a limiter of their own (:data:`CODE_THREADS` at a time), apart from the
default one (anyio's 40) that the writes and the other reads that may block (a store, the
replication thread) take theirs from. A predicate may be slow, or hang (a call to a service
without a time-out); with one limiter for both, 40 checks of such a flag held every thread, and
every write, ``explain`` of any flag and page of users waited behind them: a client allowed only
to evaluate flags could stop the operators' writes. Now such checks queue behind one another,
and nothing else does.

Each such read also has a deadline (:class:`CodeDeadline`, ``create_app(code_timeout=)``): a
request kept busy for ever by a hung predicate held its connection for ever, and a client
allowed only to evaluate flags could fill the server's connections (busy ones are never evicted)
and lock every other client out. On the deadline the request is answered at once
(:class:`CodeTimeoutError`, a 503) while its thread keeps its limiter token until the code really
returns: the thread cannot be stopped, and a token given back early (anyio's
``abandon_on_cancel`` with the limiter given to ``run_sync``) would let every new request start
one more thread beside the hung ones. So the token is taken apart from the thread (the thread
is started under a limiter that never waits) and given back by whoever is last: the request when
its thread returned in time or never began, else the thread when its code returns
(:class:`_Borrower`). At most :data:`CODE_THREADS` threads ever run the application's code; a
request that gets no token before its deadline is answered the same way.

The limiter is one per event loop (as anyio's default one is), shared by every app the loop
serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from typing import Final, TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar

__all__ = [
    "CODE_THREADS",
    "CODE_TIMEOUT",
    "CodeDeadline",
    "CodeTimeoutError",
    "check_code_timeout",
    "code_limiter",
]

T = TypeVar("T")
Args = TypeVarTuple("Args")

#: How many reads may run the application's code at once (as many as anyio's default threads,
#: which the rest keep for themselves).
CODE_THREADS: Final = 40
#: Seconds a read that runs the application's code has by default (``code_timeout``).
CODE_TIMEOUT: Final = 10.0
#: Flags whose time-outs were logged, at most (emptied when full): one warning per flag.
WARNED_KEPT: Final = 4096

_LIMITER: RunVar[CapacityLimiter] = RunVar("rollout_code_threads")
#: The threads themselves are started under this one, which never makes them wait: the token
#: that counts them is :func:`code_limiter`'s, taken before and given back when they return.
_UNBOUNDED: RunVar[CapacityLimiter] = RunVar("rollout_code_threads_unbounded")

logger = logging.getLogger("rollout")


def code_limiter() -> CapacityLimiter:
    """The running event loop's limiter of threads that run the application's code."""
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(CODE_THREADS)
        _LIMITER.set(limiter)
        return limiter


def _unbounded() -> CapacityLimiter:
    try:
        return _UNBOUNDED.get()
    except LookupError:
        limiter = CapacityLimiter(math.inf)
        _UNBOUNDED.set(limiter)
        return limiter


def check_code_timeout(seconds: object) -> float:
    """``seconds`` as a deadline: a positive, finite number (ValueError otherwise)."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ValueError(f"code_timeout must be a positive number of seconds, got {seconds!r}")
    return float(seconds)


class CodeTimeoutError(Exception):
    """A read's deadline passed before the application's code it runs returned (or before a
    thread to run it was free). ``flag`` names the flag being evaluated (None: a bulk
    evaluation that had not begun one)."""

    def __init__(self, flag: str | None, seconds: float) -> None:
        self.flag, self.seconds = flag, seconds
        what = f"flag {flag!r}" if flag is not None else "the evaluation"
        super().__init__(
            f"{what} was not answered within its deadline of {seconds:g} s (code_timeout): a "
            f"group's predicate or a rule it runs did not return in time, or all "
            f"{CODE_THREADS} threads that run them were busy"
        )


class CodeDeadline:
    """One app's deadline for the reads that run the application's code, and its counts:
    ``timeouts`` (requests answered at their deadline) and ``overdue`` (threads still running
    code for a request answered already: each holds a limiter token)."""

    def __init__(self, seconds: float = CODE_TIMEOUT) -> None:
        self.seconds = check_code_timeout(seconds)
        self.timeouts = 0
        self.overdue = 0  #: changed on the event loop only
        self._warned: set[str | None] = set()

    async def run(
        self,
        flag: str | Callable[[], str | None],
        function: Callable[[Unpack[Args]], T],
        *args: *Args,
    ) -> T:
        """``function(*args)`` on a worker thread counted by :func:`code_limiter`, within
        :attr:`seconds`; else :class:`CodeTimeoutError` naming ``flag`` (or what it answers
        then: the flag a bulk evaluation is at)."""
        limiter = code_limiter()
        borrower = _Borrower(self, limiter)
        with anyio.move_on_after(self.seconds):
            try:  # a free token taken at once: no trip round the event loop for it
                limiter.acquire_on_behalf_of_nowait(borrower)
            except anyio.WouldBlock:
                await limiter.acquire_on_behalf_of(borrower)
            try:
                # Abandoned at the deadline: the thread then gives the token back itself.
                result = await anyio.to_thread.run_sync(
                    borrower.call, function, *args, abandon_on_cancel=True, limiter=_unbounded()
                )
            except BaseException:
                borrower.leave()
                raise
            limiter.release_on_behalf_of(borrower)
            return result
        self.timeouts += 1
        name = flag if isinstance(flag, str) else flag()
        error = CodeTimeoutError(name, self.seconds)
        if name not in self._warned:
            if len(self._warned) >= WARNED_KEPT:
                self._warned.clear()
            self._warned.add(name)
            logger.warning(
                "%s; answered 503, its thread (if it began) runs on, holding one of the %d "
                "until the code returns. Logged once per flag: the time-outs are counted "
                "(rollout_code_timeouts_total)",
                error,
                CODE_THREADS,
            )
        raise error


_WAITING, _RUNNING, _DONE, _LEFT, _LEFT_RUNNING = range(5)


class _Borrower:
    """One read's token of :func:`code_limiter`, and who gives it back: the event loop when the
    thread returned in time (or never began), else the thread itself when its code returns."""

    __slots__ = ("_deadline", "_limiter", "_lock", "_loop", "_state")

    def __init__(self, deadline: CodeDeadline, limiter: CapacityLimiter) -> None:
        self._deadline = deadline
        self._limiter = limiter
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._state = _WAITING

    def call(self, function: Callable[[Unpack[Args]], T], *args: *Args) -> T:
        """On the worker thread: ``function(*args)``, unless the read has left already."""
        with self._lock:
            if self._state == _LEFT:
                raise _LeftError
            self._state = _RUNNING
        try:
            return function(*args)
        finally:
            with self._lock:
                left, self._state = self._state == _LEFT_RUNNING, _DONE
            if left:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                    self._loop.call_soon_threadsafe(self._returned)

    def _returned(self) -> None:
        """On the event loop: the code of a read that left has returned at last."""
        self._deadline.overdue -= 1
        self._limiter.release_on_behalf_of(self)

    def leave(self) -> None:
        """On the event loop, when the read stops waiting for its thread (its deadline)."""
        with self._lock:
            if self._state == _RUNNING:
                self._state = _LEFT_RUNNING
                self._deadline.overdue += 1
                return
            self._state = _LEFT
        self._limiter.release_on_behalf_of(self)  # the code never began, or has returned


class _LeftError(Exception):
    """Raised on a worker thread whose read left before the thread began: nothing runs."""
