"""The check slot: the one place that decides what ``flags.active`` is.

``Rollout.active`` is a function over the replica's dicts, set as the method of the instance's own
class (see rollout._core.evaluate), not a method that reads ``self`` on every check. Two
things must change what a check answers for a while without slowing the check when they are not
in use: ``flags.override()`` (forced answers, for tests) and the admin's metrics sampler (it
counts checks during short windows). Both install a *wrapper* here and uninstall it later; the
slot composes the compiled check with the wrappers installed right now, in the order they were
installed, and publishes the result as ``flags.active``.

With no wrapper installed, ``flags.active`` is the compiled check itself: nothing is paid (the
slot's ``compiled`` is that check as a plain function, which Rollout publishes as its method). A
wrapper never has to know about the others: uninstalling one rebuilds the chain from the
compiled check and the wrappers still installed, in any order. (Before the slot, each wrapper
swapped ``flags.active`` itself and had to detect being wrapped over by the other.)

Code that kept ``check = flags.active`` in a variable keeps what it took; that is the price of
the compiled function, and documented.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    from .._core.evaluate import ActiveCheck

__all__ = ["CheckSlot", "Wrapper"]

#: Builds a check from the check it wraps. Called again whenever the chain is rebuilt, so it
#: must be cheap and keep its state outside the closure it returns (counts, forced answers).
Wrapper: TypeAlias = "Callable[[ActiveCheck], ActiveCheck]"
#: Told of a check answered elsewhere than through the wrappers: ``(name, answer)``.
Observer: TypeAlias = "Callable[[object, bool], None]"


class CheckSlot:
    """The compiled check and the wrappers installed over it, published through ``publish``."""

    # Slots: ``wrapped`` is read on every OpenFeature resolution (by the C one in place).
    __slots__ = ("_compiled", "_lock", "_observers", "_publish", "_wrappers", "wrapped")

    def __init__(self, compiled: ActiveCheck, publish: Callable[[ActiveCheck], None]) -> None:
        self._compiled = compiled
        self._publish = publish
        self._lock = threading.Lock()
        self._wrappers: list[tuple[object, Wrapper, Observer | None]] = []
        #: Whether any wrapper is installed. Code that answers checks without calling
        #: ``flags.active`` (the OpenFeature provider's resolutions) tells :meth:`observed`
        #: what it answered while one is, so that the metrics sampler counts it too.
        self.wrapped = False
        self._observers: tuple[Observer, ...] = ()
        publish(compiled)

    @property
    def compiled(self) -> ActiveCheck:
        """The check without any wrapper: what a wrapper's fallback should call."""
        return self._compiled

    def install(self, wrapper: Wrapper, *, observe: Observer | None = None) -> object:
        """Wrap the current check (outermost); returns the token that uninstalls it.
        ``observe(name, answer)`` is told of checks answered without ``flags.active``."""
        token = object()
        with self._lock:
            self._wrappers.append((token, wrapper, observe))
            self._rebuild()
        return token

    def observed(self, name: object, answer: bool) -> None:
        """A check of ``name`` answered ``answer`` without calling ``flags.active``."""
        for observe in self._observers:
            observe(name, answer)

    def uninstall(self, token: object) -> None:
        """Remove one wrapper, wherever it is in the chain. Removing it twice does nothing."""
        with self._lock:
            kept = [entry for entry in self._wrappers if entry[0] is not token]
            if len(kept) != len(self._wrappers):
                self._wrappers = kept
                self._rebuild()

    def _rebuild(self) -> None:
        self._observers = tuple(observe for _, _, observe in self._wrappers if observe)
        self.wrapped = bool(self._wrappers)
        check = self._compiled
        for _, wrapper, _ in self._wrappers:
            check = wrapper(check)
        self._publish(check)
