"""What several conformance suites assert alike: a saved delta reads back exactly."""

from __future__ import annotations

from collections.abc import Callable

from .._core.state import Delta
from ..stores import Store

__all__ = ["assert_reloads_exactly"]


def assert_reloads_exactly(store: Store, reopen: Callable[[Store], Store], delta: Delta) -> None:
    """Save ``delta`` into ``store``; a second handle on the same data loads exactly it.

    The second handle is closed here (unless ``reopen`` gave ``store`` itself); ``store``
    stays the caller's to close.
    """
    store.save(delta)
    other = reopen(store)
    try:
        assert other.load() == delta
    finally:
        if other is not store:
            other.close()
