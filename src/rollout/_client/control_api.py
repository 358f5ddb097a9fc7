"""Local controls over checks: ``degrade`` (switch a failing feature off) and ``override``
(force an answer in this process, for tests).

A mixin of :class:`rollout.Rollout`; the machinery is in rollout._degrade and rollout._override.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._core import validate as _validate
from .degrade import Degrade, OnDegrade
from .override import Override

if TYPE_CHECKING:
    from .degrade_trackers import DegradeTrackers
    from .override import Overrides
    from .writes import FlagName

__all__ = ["ControlAPI"]


class ControlAPI:
    """``degrade``, ``override`` and ``overrides`` of :class:`rollout.Rollout`."""

    _degrades: DegradeTrackers
    _overrides: Overrides

    def degrade(
        self,
        name: FlagName,
        *,
        threshold: float = 0.1,
        minimum: int = 100,
        window: float = 60.0,
        failures: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        on_degrade: OnDegrade | list[OnDegrade] | tuple[OnDegrade, ...] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Degrade:
        """Count the feature's calls and switch the flag off when too many fail.

        ``with flags.degrade("recs"): call_recs()`` (also ``async with``, or as a decorator)
        counts calls and failures (exceptions in ``failures``, re-raised) in a sliding
        ``window`` of seconds in this process. Once at least ``minimum`` calls were seen and the
        failed share reaches ``threshold``, the flag is deactivated once (replicated like any
        write; history action ``degraded``), ``on_degrade(flag, reason)`` callbacks run, and it
        stays off until someone turns it on again. Made for the call site: the same name and
        arguments give the same tracker; other arguments for that name raise ``ValueError``.
        ``clock``: monotonic milliseconds, for tests (``rollout.testing.FakeClock``).
        """
        args = (threshold, minimum, window, failures, on_degrade, clock)
        try:
            known = self._degrades.last.get(name)
        except TypeError:  # an unhashable name: make() says what is wrong with it
            known = None
        if known is not None and known[0] == args:
            return known[1]
        return self._degrades.make(name, args)

    def override(self, name: FlagName, value: bool) -> Override:
        """Force the flag's answer in this process while a ``with`` block or decorated call runs.

        For tests of code that uses a module-level Rollout: ``active``, ``inactive``,
        ``feature_states`` and ``active_features`` answer ``value`` (for every user). Nothing is
        written, stored, replicated or recorded; overrides nest and restore on exit.
        """
        if not isinstance(value, bool):
            raise TypeError(f"value must be a bool, got {value!r}")
        return Override(self._overrides, _validate.flag_name(name), value)

    @property
    def overrides(self) -> Mapping[str, bool]:
        """What ``override()`` forces right now, name -> answer (a live, read-only view)."""
        return self._overrides.values
