"""A Rollout's degrade trackers: one per flag name, and the checks of ``degrade()``'s arguments.

``flags.degrade(...)`` is written at the call site and runs on every request, so the tracker is
found again cheaply: ``Rollout.degrade`` compares the arguments with the ones the name was last
given (at one call site they are the very same objects) before anything is checked. Asking for
a tracked name with other arguments is an error rather than a second, disagreeing count.
"""

from __future__ import annotations

import math
import threading

from .._core import validate as _validate
from .degrade import Degrade, OnDegrade, Params, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeAlias

    from .._core.feature import Feature

__all__ = ["Args", "DegradeTrackers"]

#: ``(threshold, minimum, window, failures, on_degrade, clock)`` as the caller gave them.
Args: TypeAlias = "tuple[Any, ...]"


class DegradeTrackers:
    """A Rollout's trackers, one per flag name, found again by the arguments they were made with."""

    def __init__(
        self,
        write: Writer,
        current: Callable[[str], Feature],
        subscribe: Callable[[Callable[[set[str]], object]], object],
    ) -> None:
        self._write = write
        self._current = current
        self._subscribe = subscribe
        self._lock = threading.Lock()
        self._by_name: dict[str, Degrade] = {}
        #: name as given -> (the arguments it was last given with, their tracker). The
        #: per-request fast path, read by ``Rollout.degrade`` itself: comparing the arguments
        #: (identical objects at one call site) is cheaper than hashing them as a key.
        self.last: dict[Any, tuple[Args, Degrade]] = {}

    def make(self, name: Any, args: Args) -> Degrade:
        """The tracker for ``name`` and ``(threshold, minimum, window, failures, on_degrade,
        clock)`` when ``last`` does not have them: checks them all, then finds or makes it."""
        threshold, minimum, window, failures, on_degrade, clock = args
        flag = _validate.flag_name(name)
        params: Params = (
            _threshold(threshold),
            _minimum(minimum),
            _window(window),
            _failures(failures),
            _callbacks(on_degrade),
        )
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning milliseconds, got {clock!r}")
        with self._lock:
            tracker = self._by_name.get(flag)
            if tracker is None:
                tracker = Degrade(flag, params, clock, self._write, self._current)
                self._by_name[flag] = tracker
                self._subscribe(tracker.flag_changed)
            else:
                _check_same(tracker, params, clock)
            self.last[name] = (args, tracker)  # a str or an Enum member: hashable
            return tracker


_NAMES = ("threshold", "minimum", "window", "failures", "on_degrade")


def _check_same(tracker: Degrade, params: tuple[Any, ...], clock: object) -> None:
    differ = [
        f"{name}={old!r} (now {new!r})"
        for name, old, new in zip(_NAMES, tracker.params, params, strict=True)
        if old != new
    ]
    if clock is not tracker.given_clock:
        differ.append(f"clock={tracker.given_clock!r} (now {clock!r})")
    if differ:
        hint = (
            "; pass the same callbacks each time (functions defined once, not a lambda made "
            "per call)"
            if tracker.params[4] != params[4]
            else ""
        )
        raise ValueError(
            f"degrade({tracker.flag!r}) is already tracked with other arguments: "
            f"{', '.join(differ)}{hint}"
        )


def _threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"threshold must be a number above 0 and at most 1, got {value!r}")
    if not 0.0 < value <= 1.0:  # NaN fails this too
        raise ValueError(f"threshold must be above 0 and at most 1, got {value!r}")
    return float(value)


def _minimum(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"minimum must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"minimum must be >= 1, got {value!r}")
    return value


def _window(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"window must be a number of seconds, got {value!r}")
    if not 0.0 < value < math.inf:
        raise ValueError(f"window must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _failures(value: object) -> tuple[type[BaseException], ...]:
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if isinstance(value, tuple | list) and value:
        for item in value:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(f"failures must hold exception classes, got {item!r} in {value!r}")
        return tuple(value)
    if isinstance(value, tuple | list):
        raise ValueError(f"failures must name at least one exception class, got {value!r}")
    raise TypeError(f"failures must be an exception class or a tuple of them, got {value!r}")


def _callbacks(value: object) -> tuple[OnDegrade, ...]:
    if value is None:
        return ()
    items: Iterable[object] = value if isinstance(value, tuple | list) else (value,)
    callbacks = tuple(items)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(
                f"on_degrade must be a callable or a list of callables, got {callback!r}"
            )
    return callbacks  # type: ignore[return-value]  # each checked above (no cast: no typing)
