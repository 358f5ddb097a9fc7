"""The part of :class:`rollout.testing.StoreConformance` about ``Store.discard``.

A compare-and-delete: a register goes only if flag, key and timestamp all still match. It is how
a register stamped in the future (held in the quarantine) leaves a store, where under the
store's own last-writer-wins merge it would otherwise beat every later write to its key.
"""

from __future__ import annotations

from .._core.clock import Timestamp
from .._core.keys import EXISTS, USER, history_key
from .._core.state import Register
from ..stores import Store

__all__ = ["DiscardConformance"]

_FUTURE = 4_000_000_000_000  # 2096: a register from a clock far ahead


def _reg(wall: int, value: object, node: int = 7) -> Register:
    return Register(Timestamp(wall, 0, node), value)


class DiscardConformance:
    """Mixed into StoreConformance; ``make_store`` comes from there."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def test_discard_removes_exactly_the_registers_named(self) -> None:
        store = self.make_store()
        try:
            bomb = _reg(_FUTURE, True)
            store.save({"f": {USER + "a": bomb, USER + "b": bomb, EXISTS: _reg(10, True)}})
            store.discard({"f": {USER + "a": bomb}, "never-saved": {EXISTS: bomb}})
            assert store.load() == {"f": {USER + "b": bomb, EXISTS: _reg(10, True)}}
        finally:
            store.close()

    def test_discard_leaves_a_register_whose_timestamp_differs(self) -> None:
        store = self.make_store()
        try:
            store.save({"f": {USER + "a": _reg(_FUTURE + 1, True)}})
            store.discard({"f": {USER + "a": _reg(_FUTURE, True)}})  # not the one held
            store.discard({"f": {USER + "a": _reg(_FUTURE + 1, False, node=8)}})  # other node
            assert store.load() == {"f": {USER + "a": _reg(_FUTURE + 1, True)}}
        finally:
            store.close()

    def test_after_discard_an_older_write_is_kept_again(self) -> None:
        # The point of discard: a future register left in the store beats every honest write.
        store = self.make_store()
        try:
            bomb = _reg(_FUTURE, True)
            store.save({"f": {USER + "a": bomb}})
            store.save({"f": {USER + "a": _reg(20, False)}})
            assert store.load()["f"][USER + "a"] == bomb
            store.discard({"f": {USER + "a": bomb}})
            store.save({"f": {USER + "a": _reg(20, False)}})
            assert store.load()["f"][USER + "a"] == _reg(20, False)
        finally:
            store.close()

    def test_discard_removes_a_history_event_from_the_history_kept(self) -> None:
        store = self.make_store()
        try:
            limit = store.history_limit
            future = Timestamp(_FUTURE, 0, 7)
            event = {history_key(future): Register(future, {"action": "x"})}
            store.save({"f": event})
            store.discard({"f": event})
            assert store.load().get("f", {}) == {}
            # The history bound counts only events still held: `limit` new ones all stay.
            fresh = [Timestamp(wall, 0, 7) for wall in range(1, limit + 1)]
            store.save({"f": {history_key(ts): Register(ts, {"action": "y"}) for ts in fresh}})
            assert len(store.load()["f"]) == limit
        finally:
            store.close()

    def test_discard_after_close_raises_closed_error(self) -> None:
        from ..errors import ClosedError

        store = self.make_store()
        store.close()
        try:
            store.discard({"f": {EXISTS: _reg(1, True)}})
        except ClosedError:
            return
        raise AssertionError(f"{type(store).__name__}.discard worked after close()")
