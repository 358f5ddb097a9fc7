"""Counting checks by flag and result without slowing checks down: a duty-cycle sampler.

A check (``flags.active(name, user)``) costs about 60 ns: one dict lookup and a little more
(see rollout._core.evaluate). Counting every call, even with the cheapest wrapper (one more Python
call and a plain ``dict`` increment), more than doubles that: about 70 ns become 150 ns in
``bench.http_bench``. That would be paid on the hot path of every request of every service,
whether or not anybody ever looks at the numbers; a lock or a ``prometheus_client`` counter
would cost more again.

So checks are counted only now and then. A sampler thread installs a counting wrapper in the
flags' check slot (rollout._client.check_slot) for a short *window* (10 ms) once every *period*
(1 s) and uninstalls it afterwards. Outside the windows the check is
exactly the original function: no flag test, no branch, nothing. The counts seen in a window
are scaled by the time the window stands for (the whole cycle) over the window's own length,
which estimates the total of a steady workload well; short bursts that fall between windows are
missed, which is the price of costing nothing.

Limits, on purpose:

* code that saved ``flags.active`` in a variable (``check = flags.active``) before a window
  keeps calling the original and is not counted;
* while a window is open, a check costs one more Python call and a dict increment; the increment
  is not atomic across threads, so two threads counting the same key at the same instant may
  count once (a sample is an estimate anyway);
* one sampler per Rollout however many apps serve it (each would count the same checks);
* an override (``flags.override()``) is another wrapper in the same slot: either may begin or
  end during the other, and the slot rebuilds the chain from what is still installed;
* the OpenFeature provider answers most resolutions without ``flags.active`` (cheaper): it tells
  the slot what it answered while a window is open, counted like a check (``observe``).

The sampler starts when :meth:`CheckSampler.start` is first called (``/metrics`` does it on its
first scrape, passing the server's event loop) and stops when :meth:`CheckSampler.stop` is
called, when that event loop stops (the server has shut down: no lifespan hook is needed, so it
also works for an app mounted inside another), or when its Rollout is closed or
garbage-collected. In every case the original check is back in place. A later scrape starts it
again.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .._core import validate as _validate

if TYPE_CHECKING:
    from .._client.check_slot import CheckSlot
    from .._client.rollout import Rollout
    from .._core.evaluate import ActiveCheck

__all__ = ["DEFAULT_PERIOD", "DEFAULT_WINDOW", "CheckSampler", "sampler_for", "stop_sampler"]

DEFAULT_WINDOW = 0.01
DEFAULT_PERIOD = 1.0

_samplers: weakref.WeakKeyDictionary[Rollout, CheckSampler] = weakref.WeakKeyDictionary()
_samplers_lock = threading.Lock()


def sampler_for(
    flags: Rollout, *, window: float = DEFAULT_WINDOW, period: float = DEFAULT_PERIOD
) -> CheckSampler:
    """The Rollout's one sampler, made on first use (later ``window``/``period`` are ignored)."""
    with _samplers_lock:
        sampler = _samplers.get(flags)
        if sampler is None:
            sampler = _samplers[flags] = CheckSampler(flags, window=window, period=period)
        return sampler


def stop_sampler(flags: Rollout, timeout: float = 5.0) -> None:
    """Stop the Rollout's sampler if it has one (the original check is then back in place)."""
    with _samplers_lock:
        sampler = _samplers.get(flags)
    if sampler is not None:
        sampler.stop(timeout)


class CheckSampler:
    """Estimated numbers of checks per ``(flag, result)``, from short counting windows."""

    def __init__(
        self, flags: Rollout, *, window: float = DEFAULT_WINDOW, period: float = DEFAULT_PERIOD
    ) -> None:
        for argument, value in (("window", window), ("period", period)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{argument} must be a positive number of seconds, got {value!r}")
        if period < window:
            raise ValueError(f"period must be at least window ({window!r}), got {period!r}")
        self.window = float(window)
        self.period = float(period)
        self._flags = weakref.ref(flags)
        # Only flags that exist have a total of their own: the number of labelled series is
        # bounded by the flags, never by what callers ask for (typos, names built at run time,
        # or a client of the API asking for random names).
        self._totals: dict[tuple[str, bool], float] = {}
        self._unknown = 0.0
        # Unix time each existing flag was last seen checked: in a counting window, or by note()
        # (an exact check this process served, e.g. the API's). Bounded by the flags, as above.
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # guards _totals and windows between thread and scrapes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # A counting wrapper that something else wrapped over during its window (weakly: the
        # wrapper holds the original check, whose Rollout must stay collectable).
        #: Completed counting windows since the sampler started.
        self.windows = 0

    @property
    def duty_cycle(self) -> float:
        """The share of the time checks are counted (window / period)."""
        return self.window / self.period

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start sampling (idempotent; a stopped sampler can be started again).

        With ``loop``, sampling also stops once that event loop is no longer running (the
        latest call's loop counts).
        """
        with self._lock:
            self._loop = loop
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="rollout-check-sampler", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling; when this returns the original check is back on the Rollout."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def totals(self) -> dict[tuple[str, bool], float]:
        """Estimated checks so far of flags that exist, per ``(flag name, result)``.

        A flag deleted since is no longer there (its series ends; a recreated flag starts at 0).
        """
        with self._lock:
            return dict(self._totals)

    def last_checked(self) -> dict[str, float]:
        """Unix time each flag was last seen checked, by a counting window or :meth:`note`."""
        with self._lock:
            return dict(self._last)

    def note(self, name: str) -> None:
        """Record that ``name``, an existing flag, was checked now (a check served exactly, such
        as the API's, which a window would see only one time in a hundred)."""
        with self._lock:
            self._last[name] = time.time()

    @property
    def unknown(self) -> float:
        """Estimated checks so far of names that were not flags when they were counted."""
        return self._unknown

    # The thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        cycle_start = time.perf_counter()
        # Wait first, then count: the window ends its cycle, so its scale is known at once.
        while not self._stop.wait(self.period - self.window):
            flags = self._flags()
            loop = self._loop
            if flags is None or flags.stats()["closed"] or (loop and not loop.is_running()):
                return
            counts, opened, closed = self._count_one_window(flags)
            scale = (closed - cycle_start) / (closed - opened)
            cycle_start = closed
            self._add(counts, scale, set(flags.features()))
            del flags  # hold no reference between windows: the Rollout may be collected

    def _count_one_window(self, flags: Rollout) -> tuple[dict[tuple[Any, bool], int], float, float]:
        # Two dicts rather than one keyed by (name, answer): no tuple to build per check, which
        # halves what a check pays inside a window (see bench.http_bench).
        on: defaultdict[Any, int] = defaultdict(int)
        off: defaultdict[Any, int] = defaultdict(int)

        def wrap(inner: ActiveCheck) -> ActiveCheck:
            def counting(name: Any, user: Any = None) -> bool:
                answer = inner(name, user)
                # The inner check raised for an unhashable name, so the name is a key here.
                if answer:
                    on[name] += 1
                else:
                    off[name] += 1
                return answer

            return counting

        def observe(name: Any, answer: bool) -> None:
            # A check answered without flags.active: the OpenFeature provider's resolutions.
            if answer:
                on[name] += 1
            else:
                off[name] += 1

        slot: CheckSlot = flags._check_slot
        opened = time.perf_counter()
        token = slot.install(wrap, observe=observe)
        try:
            self._stop.wait(self.window)  # a stop() ends the window early
        finally:
            slot.uninstall(token)
            closed = time.perf_counter()
        # Copies made in one step each (the GIL holds): a check still inside the wrapper on
        # another thread may add to the dicts while they are read.
        counts = {(name, True): n for name, n in on.copy().items()}
        counts.update({(name, False): n for name, n in off.copy().items()})
        return counts, opened, closed

    def _add(self, counts: dict[tuple[Any, bool], int], scale: float, known: set[str]) -> None:
        now = time.time()  # a Unix time for people and Prometheus, not a duration
        with self._lock:
            for (name, answer), count in counts.items():
                label = _label(name)
                if label is None:
                    continue
                if label not in known:
                    self._unknown += count * scale
                    continue
                key = (label, answer)
                self._totals[key] = self._totals.get(key, 0.0) + count * scale
                self._last[label] = now
            for key in [key for key in self._totals if key[0] not in known]:
                del self._totals[key]  # deleted since: its series ends
            for name in [name for name in self._last if name not in known]:
                del self._last[name]
            self.windows += 1


def _label(name: object) -> str | None:
    """The flag name as a label: Enum members by their value; None for what is not a name."""
    if type(name) is str:
        return name if name else None
    try:
        return _validate.flag_name(name)
    except (TypeError, ValueError):
        return None
