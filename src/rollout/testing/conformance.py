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

import threading
from typing import TYPE_CHECKING

from .._core.clock import Timestamp
from .._core.keys import DATA, DATA_RESET, EXISTS, PERCENTAGE, RESET, USER, history_key, is_history
from .._core.state import Delta, Register
from ..stores import Store
from ._definition_conformance import DefinitionConformance
from ._discard_conformance import DiscardConformance
from ._quarantine_conformance import QuarantineConformance
from ._round_trip import assert_reloads_exactly
from .eventually import eventually

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from ..sync import Transport

__all__ = ["PartitionConformance", "StoreConformance", "TransportConformance"]


def _ts(wall: int, counter: int = 0, node: int = 7) -> Timestamp:
    return Timestamp(wall, counter, node)


def _reg(wall: int, value: object, counter: int = 0, node: int = 7) -> Register:
    return Register(_ts(wall, counter, node), value)


class StoreConformance(DefinitionConformance, DiscardConformance, QuarantineConformance):
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
            assert_reloads_exactly(store, self.reopen, delta)
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
        store = self.make_store()
        try:
            limit = store.history_limit
            events = [_ts(wall) for wall in range(1, limit + 31)]
            # In two saves, newest first: the second brings only events older than all kept.
            for batch in (events[30:], events[:30]):
                store.save({"f": {history_key(ts): Register(ts, {"action": "x"}) for ts in batch}})
            store.save({"g": {history_key(_ts(1)): Register(_ts(1), {"action": "y"})}})
            loaded = store.load()
            kept = sorted(k for k in loaded["f"] if is_history(k))
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

    A transport whose links a test can cut subclasses :class:`PartitionConformance` instead,
    which adds a partition that heals.
    """

    #: How long a change may take to arrive (generous: this is liveness, not speed).
    deadline = 20.0

    def make_transports(self, count: int) -> list[Transport]:
        raise NotImplementedError

    def _replicas(self, count: int) -> list[Rollout]:
        from .._client.rollout import Rollout

        replicas = [Rollout(transport=transport) for transport in self.make_transports(count)]
        for replica in replicas:  # with peers, it writes once one of them judged its clock
            assert replica.wait_synced(self.deadline, peers=1)
        return replicas

    def test_a_write_reaches_every_other_replica(self) -> None:
        replicas = self._replicas(3)
        try:
            replicas[0].activate_percentage("chat", 20)
            replicas[1].set_feature_data("chat", {"owner": "web"})
            for replica in replicas:
                eventually(
                    lambda r=replica: r.get("chat").data.get("owner") == "web",  # type: ignore[misc]
                    self.deadline,
                    "the data everywhere",
                )
                eventually(
                    lambda r=replica: r.get("chat").percentage == 20,  # type: ignore[misc]
                    self.deadline,
                    "the percentage everywhere",
                )
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
                eventually(
                    lambda r=replica: r.get("chat").users == want,  # type: ignore[misc]
                    self.deadline,
                    "every replica's user everywhere",
                )
        finally:
            for replica in replicas:
                replica.close()

    def test_writes_from_many_threads_to_one_flag_all_survive(self) -> None:
        # Truly at once: several threads per replica, released together, each adding users to
        # the same flag. Every user must survive everywhere (a register per user, never a
        # whole-flag overwrite), and the replicas must end up identical.
        replicas = self._replicas(2)
        per_replica, per_thread = 3, 10
        start = threading.Barrier(len(replicas) * per_replica)
        errors: list[BaseException] = []

        def write(replica: Rollout, prefix: str) -> None:
            try:
                start.wait(self.deadline)
                for i in range(per_thread):
                    replica.activate_user("chat", f"{prefix}-{i}")
            except BaseException as exc:  # reported by the test thread below
                errors.append(exc)

        writers = {
            f"r{r}t{t}": threading.Thread(target=write, args=(replica, f"r{r}t{t}"))
            for r, replica in enumerate(replicas)
            for t in range(per_replica)
        }
        try:
            for thread in writers.values():
                thread.start()
            for thread in writers.values():
                thread.join(self.deadline)
            assert errors == []
            want = {f"{prefix}-{i}" for prefix in writers for i in range(per_thread)}
            for replica in replicas:
                eventually(
                    lambda r=replica: r.get("chat").users == want,  # type: ignore[misc]
                    self.deadline,
                    "every thread's users everywhere",
                )
            eventually(
                lambda: replicas[0].export() == replicas[1].export(),
                self.deadline,
                "identical replicas",
            )
        finally:
            for replica in replicas:
                replica.close()

    def test_a_write_made_while_merging_replicates_too(self) -> None:
        # A subscriber runs on the thread that merged, which is the transport's own: a write
        # it makes re-enters the transport from inside a delivery. That must neither deadlock
        # (publish is called under the write lock) nor be lost, and replication goes on.
        source, echo = replicas = self._replicas(2)
        answered_on: list[str] = []

        def answer(changed: set[str]) -> None:
            if "ping" in changed and not answered_on:
                answered_on.append(threading.current_thread().name)
                echo.activate_user("pong", "from-subscriber")

        echo.subscribe(answer)
        try:
            source.activate("ping")
            eventually(
                lambda: source.active("pong", "from-subscriber"),
                self.deadline,
                "the write made in the subscriber reaches the first writer",
            )
            assert answered_on != [threading.current_thread().name]  # merged in the background
            source.activate("after")
            echo.activate("after-echo")
            eventually(lambda: echo.active("after"), self.deadline, "replication goes on")
            eventually(lambda: source.active("after-echo"), self.deadline, "both ways")
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
            eventually(
                lambda: replicas[1].export() == replicas[0].export(),
                self.deadline,
                "identical replicas",
            )
        finally:
            for replica in replicas:
                replica.close()

    def test_a_replica_that_starts_late_catches_up(self) -> None:
        from .._client.rollout import Rollout

        # A third replica confirms the writer's clock (it has peers: alone, it would not write).
        first, witness_transport, late = self.make_transports(3)
        writer, witness = Rollout(transport=first), Rollout(transport=witness_transport)
        try:
            assert writer.wait_synced(self.deadline, peers=1)
            for i in range(50):
                writer.activate_user(f"flag-{i}", i)
            writer.delete("flag-0")
            joined = Rollout(transport=late)
            try:
                eventually(
                    lambda: joined.export() == writer.export(),
                    self.deadline,
                    "the late replica has everything",
                )
                assert joined.features() == writer.features()
                assert "flag-0" not in joined.features()
            finally:
                joined.close()
        finally:
            writer.close()
            witness.close()

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

    def test_the_transport_itself_closes_idempotently(self) -> None:
        # Rollout.close() calls the transport's close() once; here it is called directly, more
        # than once, before start() and under a running replica, and publish() after it. (A
        # close that hangs fails this test by its time-out; no wall-clock time is asserted.)
        from .._client.rollout import Rollout

        def close_within(transport: Transport, timeout: float) -> None:
            transport.close(timeout)

        (never_started,) = self.make_transports(1)
        close_within(never_started, 5.0)
        close_within(never_started, 5.0)
        first, second = self.make_transports(2)
        writer, reader = Rollout(transport=first), Rollout(transport=second)
        try:
            assert writer.wait_synced(self.deadline, peers=1)
            writer.activate("chat")
            eventually(lambda: reader.active("chat"), self.deadline, "the write arrives")
        finally:
            close_within(first, 5.0)
            close_within(first, 5.0)
            writer.close(5.0)  # and once more through its Rollout
            reader.close(5.0)
            close_within(second, 5.0)
        first.publish({"chat": {EXISTS: _reg(1, True)}})  # never raises, also when closed
        assert writer.active("chat")


class PartitionConformance(TransportConformance):
    """Everything in :class:`TransportConformance`, and a partition that heals.

    For transports whose links a test can cut, with two more methods::

        class TestMyTransport(PartitionConformance):
            def make_transports(self, count: int) -> list[Transport]: ...
            def isolate(self, index: int) -> None: ...   # cut transport `index` off
            def heal(self) -> None: ...                  # and reconnect it
    """

    def isolate(self, index: int) -> None:
        """Cut transport ``index`` of the latest ``make_transports()`` off from all the others,
        both ways, until :meth:`heal`: what is sent across the cut is lost, not delayed."""
        raise NotImplementedError

    def heal(self) -> None:
        """Undo :meth:`isolate`: the transports can reach each other again."""
        raise NotImplementedError

    def test_a_partition_heals_and_the_writes_of_both_sides_survive(self) -> None:
        replicas = self._replicas(3)
        try:
            replicas[0].activate_user("chat", "before")
            for replica in replicas:
                eventually(
                    lambda r=replica: r.active("chat", "before"),  # type: ignore[misc]
                    self.deadline,
                    "the first write everywhere",
                )
            self.isolate(2)
            replicas[0].activate_user("chat", "majority")
            replicas[1].deactivate_user("chat", "before")
            replicas[2].activate_user("chat", "minority")  # cut off: it still writes locally
            replicas[2].set_feature_data("chat", {"side": "minority"})
            eventually(
                lambda: (
                    replicas[1].active("chat", "majority")
                    and not replicas[0].active("chat", "before")
                ),
                self.deadline,
                "the connected side goes on replicating",
            )
            self.heal()
            for replica in replicas:
                eventually(
                    lambda r=replica: (  # type: ignore[misc]
                        r.get("chat").users == {"majority", "minority"}
                        and r.get("chat").data == {"side": "minority"}
                    ),
                    self.deadline,
                    "the writes of both sides everywhere",
                )
            eventually(
                lambda: len({replica.export() for replica in replicas}) == 1,
                self.deadline,
                "identical replicas",
            )
        finally:
            for replica in replicas:
                replica.close()
