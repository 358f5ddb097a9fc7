"""Public test helpers: a controllable clock and the store conformance suite.

Every store passes :class:`StoreConformance`. To test your own store, subclass it in a test
module (pytest collects ``Test*`` classes) and say how to make one::

    class TestMyStore(StoreConformance):
        def make_store(self) -> Store:
            return MyStore(...)

        def reopen(self, store: Store) -> Store:     # a second handle on the same data
            return MyStore(...same backing...)
"""

from __future__ import annotations

import threading

from ._clock import Timestamp
from ._state import DATA, DATA_RESET, EXISTS, PERCENTAGE, RESET, USER, Delta, Register
from .stores import Store

__all__ = ["FakeClock", "StoreConformance"]


class FakeClock:
    """A wall clock in milliseconds that moves only when told: pass it as ``Rollout(clock=...)``."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        with self._lock:
            self.now_ms += ms

    def set(self, ms: int) -> None:
        with self._lock:
            self.now_ms = ms


def _ts(wall: int, counter: int = 0, node: int = 7) -> Timestamp:
    return Timestamp(wall, counter, node)


def _reg(wall: int, value: object, counter: int = 0, node: int = 7) -> Register:
    return Register(_ts(wall, counter, node), value)


class StoreConformance:
    """What every store must do. Subclass it with ``make_store`` (and ``reopen`` if durable)."""

    #: Whether data survives ``close()`` and ``reopen()`` (False for the memory store).
    durable = True

    def make_store(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        """A second, independent handle on the same data as ``store`` (default: the same one)."""
        return store

    def test_a_new_store_is_empty(self) -> None:
        store = self.make_store()
        try:
            assert store.load() == {}
        finally:
            store.close()

    def test_saved_registers_load_back_exactly(self) -> None:
        store = self.make_store()
        delta: Delta = {
            "chat": {
                EXISTS: _reg(10, True),
                PERCENTAGE: _reg(10, 20.0),
                USER + "42": _reg(11, True, counter=3),
                DATA + "owner": _reg(12, {"team": "web", "tags": ["a", 1, None]}),
                RESET: _reg(9, None),
            },
            "beta ✓": {EXISTS: _reg(13, False, node=2**63 - 1)},
        }
        try:
            store.save(delta)
            other = self.reopen(store)
            try:
                assert other.load() == delta
            finally:
                if other is not store:
                    other.close()
        finally:
            store.close()

    def test_an_older_register_never_replaces_a_newer_one(self) -> None:
        store = self.make_store()
        try:
            store.save({"f": {PERCENTAGE: _reg(20, 50.0)}})
            store.save({"f": {PERCENTAGE: _reg(10, 5.0)}})
            store.save({"f": {PERCENTAGE: _reg(20, 5.0, node=1)}})  # same wall, smaller node
            assert store.load()["f"][PERCENTAGE] == _reg(20, 50.0)
            store.save({"f": {PERCENTAGE: _reg(20, 70.0, counter=1)}})
            assert store.load()["f"][PERCENTAGE] == _reg(20, 70.0, counter=1)
        finally:
            store.close()

    def test_registers_of_one_flag_merge_key_by_key(self) -> None:
        store = self.make_store()
        try:
            store.save({"f": {USER + "1": _reg(10, True, node=1)}})
            store.save({"f": {USER + "2": _reg(10, True, node=2)}})
            assert set(store.load()["f"]) == {USER + "1", USER + "2"}
        finally:
            store.close()

    def test_a_watermark_hides_older_registers_but_not_newer_ones(self) -> None:
        store = self.make_store()
        try:
            store.save({"f": {USER + "old": _reg(10, True), DATA + "k": _reg(10, 1)}})
            store.save({"f": {RESET: _reg(20, None), USER + "new": _reg(30, True)}})
            loaded = store.load()["f"]
            # A store may drop hidden registers or keep them; a visible one must stay.
            assert loaded[USER + "new"] == _reg(30, True)
            assert loaded[RESET] == _reg(20, None)
            assert loaded[DATA + "k"] == _reg(10, 1)  # reset does not hide data
            store.save({"f": {DATA_RESET: _reg(40, None)}})
            assert store.load()["f"][DATA_RESET] == _reg(40, None)
        finally:
            store.close()

    def test_saves_from_two_handles_both_survive(self) -> None:
        store = self.make_store()
        other = self.reopen(store)
        try:
            store.save({"f": {USER + "a": _reg(10, True, node=1)}})
            other.save({"f": {USER + "b": _reg(10, True, node=2)}})
            for handle in (store, other):
                assert {USER + "a", USER + "b"} <= set(handle.load()["f"])
        finally:
            store.close()
            if other is not store:
                other.close()

    def test_close_is_idempotent_and_later_use_raises_closed_error(self) -> None:
        from .errors import ClosedError

        store = self.make_store()
        store.close()
        store.close()
        for use in (store.load, lambda: store.save({"f": {EXISTS: _reg(1, True)}})):
            try:
                use()
            except ClosedError:
                continue
            raise AssertionError(f"{type(store).__name__} was usable after close()")
