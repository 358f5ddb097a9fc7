"""One process-wide Rollout, opened on first use and closed when the process exits."""

from __future__ import annotations

import atexit
import inspect
import threading
from collections.abc import Mapping
from typing import Any

from .._client.rollout import Rollout
from ..stores import Store

__all__ = ["LazyRollout", "check_options"]


def check_options(store: object, options: object, where: str) -> dict[str, Any]:
    """``options`` as keyword arguments for ``Rollout(store, **options)``, checked up front.

    A typo in a settings file should fail when the application starts, naming the setting,
    not on the first request that checks a flag.
    """
    if store is not None and not isinstance(store, str | Store):
        raise TypeError(f"{where}: the store must be a URL string or a Store, got {store!r}")
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{where}: the options must be a mapping of Rollout arguments, got {options!r}"
        )
    if "store" in options:
        raise TypeError(f"{where}: give the store once, not also in the options: {options!r}")
    try:
        inspect.signature(Rollout).bind(store, **options)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc} (options {dict(options)!r})") from None
    return dict(options)


class LazyRollout:
    """Makes ``Rollout(store, **options)`` the first time :meth:`get` is called.

    Not at import or configuration time: a web server's reloader, a management command or a
    pre-fork master imports the application without serving it, and must not open the store
    or bind a replication port for nothing. ``close()`` also runs at interpreter exit; after
    it, ``get()`` opens a new Rollout (a test that starts the application twice gets two).
    """

    def __init__(self, store: Store | str | None, options: Mapping[str, Any]) -> None:
        self.store = store
        self.options = dict(options)
        self._lock = threading.Lock()
        self._flags: Rollout | None = None

    def get(self) -> Rollout:
        flags = self._flags
        if flags is not None:
            return flags  # the common case: no lock on the request path
        with self._lock:
            if self._flags is None:
                self._flags = Rollout(self.store, **self.options)
                atexit.register(self.close)
            return self._flags

    @property
    def opened(self) -> bool:
        return self._flags is not None

    def close(self) -> None:
        with self._lock:
            flags, self._flags = self._flags, None
            atexit.unregister(self.close)
        if flags is not None:
            flags.close()
