"""Degrade: switch a feature off by itself when too many of its calls fail.

``flags.degrade(name, ...)`` gives the flag's :class:`Degrade` tracker. Wrapped around the
feature's code (``with``, ``async with`` or as a decorator) it counts the calls and the failures
(the exceptions named in ``failures``) in a sliding time window of this process. When at least
``minimum`` calls were seen in the window and the share of failures reaches ``threshold``, it
deactivates the flag: one ordinary write, so it is stored and replicated like any other, with a
``degraded`` history event that says why. Then it stays quiet (latched) until somebody turns
the flag on again, which starts a fresh window.

Why it is built this way:

* The window is a ring of :data:`BUCKETS` counters (each ``window / BUCKETS`` seconds wide)
  with running totals, so memory is fixed whatever the call rate and a call costs O(1): the
  Ruby gem counts forever in Redis, so a failure from last week still weighs on today's rate.
* One lock guards the counters and the latch. The thread whose call reaches the threshold flips
  the latch under the lock and makes the write after releasing it, so however many threads
  cross together there is exactly one write, and no other call waits on the store's I/O.
* A call is one of three things: a failure (an exception in ``failures``), a call that did not
  fail (a return, or any other ``Exception``: a bad input is not the feature's outage), or not
  counted at all (``BaseException`` that is not an ``Exception``, like a task's cancellation or
  ``KeyboardInterrupt``: the call did not finish, it neither worked nor failed).
* Trackers are shared per flag name in a Rollout (rollout._client.degrade_trackers), because
  ``flags.degrade(...)`` is written at the call site and runs on every request.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from .._core.history import write_context
from .._core.keys import RESET
from .._core.rules import on_for_anybody
from .log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ParamSpec, TypeAlias, TypeVar

    from .._core.feature import Feature

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["ACTOR", "BUCKETS", "Degrade", "OnDegrade", "Params", "Writer"]

#: The window is counted in this many buckets: its sliding granularity is ``window / BUCKETS``.
BUCKETS = 60
#: The actor of the ``degraded`` history event.
ACTOR = "rollout.degrade"

#: ``on_degrade(flag, reason)``: called after the flag was switched off.
OnDegrade: TypeAlias = "Callable[[str, str], object]"
#: ``WritePipeline.write(changes, action)``: one stamped, stored, replicated write.
Writer: TypeAlias = "Callable[[Mapping[str, Mapping[str, Any]], str], None]"

#: ``(threshold, minimum, window, failures, callbacks)``, checked in degrade_trackers.
Params: TypeAlias = (
    "tuple[float, int, float, tuple[type[BaseException], ...], tuple[OnDegrade, ...]]"
)


class Degrade:
    """One flag's failure counter; a context manager (sync and async) and a decorator.

    Re-raises whatever the wrapped code raises. Get it from ``flags.degrade(name, ...)``.
    """

    def __init__(
        self,
        flag: str,
        params: Params,
        clock: Callable[[], float] | None,
        write: Writer,
        current: Callable[[str], Feature],
    ) -> None:
        self.flag = flag
        self.params = params
        self.threshold, self.minimum, self.window, self.failures, self.callbacks = params
        self.given_clock = clock
        # A bucket number is clock() * scale. Not a Python function around time.monotonic (in
        # seconds) but the C function itself: a Python call costs as much as the counting.
        if clock is None:
            self._clock: Callable[[], float] = time.monotonic
            self._scale = BUCKETS / self.window
        else:
            self._clock = clock
            self._scale = BUCKETS / (self.window * 1000.0)  # the given clock counts ms
        self._write = write
        self._current = current
        self._lock = threading.Lock()
        self._calls = [0] * BUCKETS
        self._failed = [0] * BUCKETS
        self._head = self._bucket()  # the newest bucket's absolute number
        self._total_calls = 0
        self._total_failed = 0
        self._latched = False  # degraded: counting stops until the flag is turned on again
        self._was_on = on_for_anybody(current(flag))

    # Counting -----------------------------------------------------------------------------

    def _bucket(self) -> int:
        return int(self._clock() * self._scale)

    def _advance(self, bucket: int) -> None:
        """Move the window's head to ``bucket``, emptying the buckets that slid out. Locked."""
        if bucket <= self._head:
            return  # the same bucket, or a clock that stepped back: count in the newest one
        if bucket - self._head >= BUCKETS:
            self._clear()
        else:
            calls, failed = self._calls, self._failed
            for number in range(self._head + 1, bucket + 1):
                slot = number % BUCKETS
                self._total_calls -= calls[slot]
                self._total_failed -= failed[slot]
                calls[slot] = failed[slot] = 0
        self._head = bucket

    def _clear(self) -> None:
        self._calls = [0] * BUCKETS
        self._failed = [0] * BUCKETS
        self._total_calls = self._total_failed = 0

    def _trip(self, calls: int, failures: int) -> None:
        """Switch the flag off (this thread alone gets here per crossing), then tell callbacks."""
        if not on_for_anybody(self._current(self.flag)):
            # Already off (by a person, or by this tracker in another process whose write has
            # arrived): nothing to switch, and no second event. Quiet until turned on again.
            logger().info("feature %r reached its degrade threshold but is already off", self.flag)
            return
        reason = (
            f"{failures} of {calls} calls failed ({_percent(failures / calls)}) in "
            f"{self.window:g} s, threshold {_percent(self.threshold)}"
        )
        try:
            with write_context(ACTOR, reason):
                self._write({self.flag: {RESET: None}}, "degraded")
        except Exception:
            # The caller's request must not fail because the switch-off could not be written
            # (store away, Rollout closed). Start a fresh window: a later crossing tries again.
            logger().exception(
                "feature %r degraded (%s) but could not be switched off", self.flag, reason
            )
            with self._lock:
                self._clear()
                self._latched = False
            return
        logger().warning("feature %r degraded and switched off: %s", self.flag, reason)
        for callback in self.callbacks:
            try:
                callback(self.flag, reason)
            except Exception:
                logger().exception("on_degrade callback %r raised", callback)

    def flag_changed(self, changed: set[str]) -> None:
        """Subscriber: a flag that was off and is turned on again starts with a fresh window."""
        if self.flag not in changed:
            return
        on = on_for_anybody(self._current(self.flag))
        with self._lock:
            if on and not self._was_on:
                self._clear()
                self._head = self._bucket()
                self._latched = False
            self._was_on = on

    # What a user can see ------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True once the threshold was reached (the flag is off), until it is turned on again."""
        return self._latched

    def counts(self) -> tuple[int, int]:
        """``(calls, failures)`` in the current window (both 0 while degraded)."""
        with self._lock:
            self._advance(self._bucket())
            return self._total_calls, self._total_failed

    def __repr__(self) -> str:
        calls, failures = self.counts()
        state = "degraded" if self._latched else f"{failures}/{calls} failed"
        return f"<Degrade {self.flag!r} {state} in {self.window:g} s>"

    # Context manager and decorator ---------------------------------------------------------

    def __enter__(self) -> Degrade:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Counting is done right here, in one Python frame: on a call that does nothing else,
        # every extra function call is a noticeable part of the cost.
        if exc is None:
            failed = False
        elif isinstance(exc, self.failures):
            failed = True
        elif isinstance(exc, Exception):
            failed = False
        else:
            return  # cancelled or interrupted: the call did not finish
        with self._lock:
            if self._latched:
                return
            bucket = int(self._clock() * self._scale)
            if bucket != self._head:
                self._advance(bucket)
            slot = self._head % BUCKETS
            self._calls[slot] += 1
            calls = self._total_calls = self._total_calls + 1
            if failed:
                self._failed[slot] += 1
                self._total_failed += 1
            if calls < self.minimum or self._total_failed / calls < self.threshold:
                return
            self._latched = True
            failures = self._total_failed
            self._clear()  # nothing is counted while latched; turned on again starts at zero
        self._trip(calls, failures)

    async def __aenter__(self) -> Degrade:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        """Wrap a function or coroutine function: each call of it is one counted call."""
        if not callable(function):
            raise TypeError(f"degrade decorates a function, got {function!r}")
        import inspect  # here, when decorating: it loads ast, dis and tokenize
        from typing import cast  # here too: typing is not loaded at import

        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            # Calling a generator function only creates the generator; its work (and failures)
            # happen later, outside any wrapper we could put here.
            raise TypeError(
                f"degrade cannot decorate the generator function {function!r}; "
                "wrap the code that consumes it in `with flags.degrade(...)` instead"
            )
        finished = self.__exit__
        if inspect.iscoroutinefunction(function):
            coroutine = cast("Callable[P, Awaitable[Any]]", function)

            @functools.wraps(function)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    result = await coroutine(*args, **kwargs)
                except BaseException as exc:
                    finished(None, exc, None)
                    raise
                finished(None, None, None)
                return result

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                finished(None, exc, None)
                raise
            finished(None, None, None)
            return result

        return wrapper


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"
