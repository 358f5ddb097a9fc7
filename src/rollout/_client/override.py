"""``flags.override(name, True/False)``: force a flag's answer in this process, for tests.

An override is local and invisible to the replicated state: nothing is written, stored, sent to
other replicas or recorded in history, and changes arriving meanwhile (local writes, merges,
refreshes) do not disturb it. Overrides nest (the innermost wins) and each restores what was
there before when it ends.

It costs nothing while no override is in place. The first override installs one wrapper in the
flags' check slot (rollout._client.check_slot): it answers the overridden names and hands every
other name to the check under it; the last one to end uninstalls it. ``inactive`` and everything
else built on ``active`` follow. ``feature_states`` and ``active_features`` also list overridden
flags that were never written (the facade adds ``values`` to the names it lists).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from types import MappingProxyType, TracebackType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ParamSpec, TypeVar

    from .._core.evaluate import ActiveCheck
    from .check_slot import CheckSlot

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["Override", "Overrides"]


class Overrides:
    """The overrides in place on one Rollout: a stack of ``(token, name, value)``."""

    def __init__(self, slot: CheckSlot, user_id: Callable[[object], str]) -> None:
        self._slot = slot
        self._user_id = user_id
        self._lock = threading.Lock()
        self._stack: list[tuple[object, str, bool]] = []
        #: What the wrapper answers, name -> forced answer; changed in place (only here) so the
        #: installed wrapper sees every change. ``evaluate`` reads it directly: a call of
        #: :meth:`forced` cost it a twentieth of a defined flag's answer.
        self.answers: dict[str, bool] = {}
        self._installed: object | None = None  # the slot's token while any override exists

    @property
    def values(self) -> Mapping[str, bool]:
        """The forced answers, name -> bool: a live, read-only view."""
        return MappingProxyType(self.answers)

    def forced(self, name: str) -> bool | None:
        """The answer ``name`` is forced to, or None (cheaper than ``values`` per check)."""
        return self.answers.get(name)

    def push(self, name: str, value: bool) -> object:
        token = object()
        with self._lock:
            self._stack.append((token, name, value))
            self.answers[name] = value
            if self._installed is None:
                self._installed = self._slot.install(self._wrap)
        return token

    def pop(self, token: object) -> None:
        with self._lock:
            entry = next((e for e in self._stack if e[0] is token), None)
            if entry is None:
                return  # already ended
            self._stack.remove(entry)
            name = entry[1]
            # What the name is overridden to now: the newest override of it still in place.
            remaining = [value for _, other, value in self._stack if other == name]
            if remaining:
                self.answers[name] = remaining[-1]
            else:
                del self.answers[name]
            if not self._stack and self._installed is not None:
                self._slot.uninstall(self._installed)
                self._installed = None

    def _wrap(self, original: ActiveCheck) -> ActiveCheck:
        values_get = self.answers.get
        user_id = self._user_id

        def active(name: Any, user: Any = None) -> bool:
            try:
                forced = values_get(name)
            except TypeError:  # unhashable: the original names the problem
                forced = None
            if forced is None:
                # An Enum member comes back here through the original, normalised to its str.
                return original(name, user)
            if user is not None:
                user_id(user)  # a bad user is still an error, as it is without an override
            return forced

        return active


class Override:
    """``flags.override(name, value)``: a context manager and a decorator (sync and async)."""

    def __init__(self, overrides: Overrides, name: str, value: bool) -> None:
        self._overrides = overrides
        self.name = name
        self.value = value
        self._tokens: list[object] = []  # one per ``with`` entered and not yet left

    def __enter__(self) -> Override:
        self._tokens.append(self._overrides.push(self.name, self.value))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._overrides.pop(self._tokens.pop())

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        """Override while each call of ``function`` runs (for a coroutine function: until it
        returns). Every call has its own override, so concurrent calls do not end each other's.
        """
        if not callable(function):
            raise TypeError(f"override decorates a function, got {function!r}")
        import inspect  # here, when decorating: it loads ast, dis and tokenize
        from typing import cast  # here too: typing is not loaded at import

        overrides, name, value = self._overrides, self.name, self.value
        if inspect.iscoroutinefunction(function):
            coroutine = cast("Callable[P, Awaitable[Any]]", function)

            @functools.wraps(function)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                token = overrides.push(name, value)
                try:
                    return await coroutine(*args, **kwargs)
                finally:
                    overrides.pop(token)

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = overrides.push(name, value)
            try:
                return function(*args, **kwargs)
            finally:
                overrides.pop(token)

        return wrapper

    def __repr__(self) -> str:
        return f"<Override {self.name!r}={self.value!r}>"
