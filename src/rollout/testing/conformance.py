"""The conformance suites every store and every transport passes.

To test your own store, subclass :class:`StoreConformance` in a test module (pytest collects
``Test*`` classes) and say how to make one::

    class TestMyStore(StoreConformance):
        def make_store(self) -> Store:
            return MyStore(...)

        def reopen(self, store: Store) -> Store:     # a second handle on the same data
            return MyStore(...same backing...)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._core.clock import Timestamp
from .._core.state import DATA, DATA_RESET, EXISTS, PERCENTAGE, RESET, USER, Delta, Register
from ..stores import Store

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from ..sync import Transport

__all__ = ["StoreConformance", "TransportConformance"]


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

    def test_history_keeps_the_newest_events_of_each_flag(self) -> None:
        from .._core.history import history_key

        store = self.make_store()
        try:
            limit = store.history_limit
            events = [_ts(wall) for wall in range(1, limit + 31)]
            # In two saves, newest first: the second brings only events older than all kept.
            for batch in (events[30:], events[:30]):
                store.save({"f": {history_key(ts): Register(ts, {"action": "x"}) for ts in batch}})
            store.save({"g": {history_key(_ts(1)): Register(_ts(1), {"action": "y"})}})
            loaded = store.load()
            kept = sorted(k for k in loaded["f"] if k.startswith("history:"))
            assert kept == [history_key(ts) for ts in events[30:]]
            assert history_key(_ts(1)) in loaded["g"]  # bounded per flag
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
        from ..errors import ClosedError

        store = self.make_store()
        store.close()
        store.close()
        for use in (store.load, lambda: store.save({"f": {EXISTS: _reg(1, True)}})):
            try:
                use()
            except ClosedError:
                continue
            raise AssertionError(f"{type(store).__name__} was usable after close()")


class TransportConformance:
    """What every sync transport must do, with real replicas.

    Subclass it with ``make_transports(count)``: ``count`` transports that, once started, reach
    each other (the peer transport: one listening port each, the others as peers)::

        class TestMyTransport(TransportConformance):
            def make_transports(self, count: int) -> list[Transport]: ...
    """

    #: How long a change may take to arrive (generous: this is liveness, not speed).
    deadline = 20.0

    def make_transports(self, count: int) -> list[Transport]:
        raise NotImplementedError

    def _replicas(self, count: int) -> list[Rollout]:
        from .._client.rollout import Rollout

        return [Rollout(transport=transport) for transport in self.make_transports(count)]

    def _eventually(self, condition: Callable[[], object]) -> None:
        deadline = time.monotonic() + self.deadline
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {self.deadline} s")
            time.sleep(0.01)

    def test_a_write_reaches_every_other_replica(self) -> None:
        replicas = self._replicas(3)
        try:
            replicas[0].activate_percentage("chat", 20)
            replicas[1].set_feature_data("chat", {"owner": "web"})
            for replica in replicas:
                self._eventually(lambda r=replica: r.get("chat").data.get("owner") == "web")  # type: ignore[misc]
                self._eventually(lambda r=replica: r.get("chat").percentage == 20)  # type: ignore[misc]
        finally:
            for replica in replicas:
                replica.close()

    def test_concurrent_writes_of_different_users_are_all_kept(self) -> None:
        replicas = self._replicas(3)
        try:
            for i, replica in enumerate(replicas):
                replica.activate_user("chat", f"user-{i}")
            want = {f"user-{i}" for i in range(3)}
            for replica in replicas:
                self._eventually(lambda r=replica: r.get("chat").users == want)  # type: ignore[misc]
        finally:
            for replica in replicas:
                replica.close()

    def test_after_wait_synced_every_replica_gets_the_write(self) -> None:
        replicas = self._replicas(2)
        try:
            assert replicas[0].wait_synced(self.deadline)
            replicas[0].activate("chat")
            replicas[0].deactivate_user("chat", 1)
            assert replicas[0].wait_synced(self.deadline)
            self._eventually(lambda: replicas[1].export() == replicas[0].export())
        finally:
            for replica in replicas:
                replica.close()

    def test_a_replica_that_starts_late_catches_up(self) -> None:
        from .._client.rollout import Rollout

        first, late = self.make_transports(2)
        writer = Rollout(transport=first)
        try:
            for i in range(50):
                writer.activate_user(f"flag-{i}", i)
            writer.delete("flag-0")
            joined = Rollout(transport=late)
            try:
                self._eventually(lambda: joined.export() == writer.export())
                assert joined.features() == writer.features()
                assert "flag-0" not in joined.features()
            finally:
                joined.close()
        finally:
            writer.close()

    def test_writes_after_a_peer_left_never_raise_and_close_is_idempotent(self) -> None:
        replicas = self._replicas(2)
        replicas[1].close()
        replicas[1].close()
        try:
            replicas[0].activate("chat")  # the peer is gone: the write still succeeds locally
            assert replicas[0].active("chat")
        finally:
            replicas[0].close()
            replicas[0].close()
