"""The in-memory transport: the conformance suite, its fault controls, its threads and its port.

Negative assertions ("b has not got it") never follow a fixed sleep: they follow a positive
marker that the message in question was handled (the network counted it as dropped, or holds it
queued), or a ``wait_synced`` that proved where things are.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rollout import Rollout
from rollout.errors import ClosedError
from rollout.memory import MemoryNetwork, MemoryTransport
from rollout.sync import SyncHost, Transport
from rollout.testing import PartitionConformance, eventually

FAST = 0.05  # anti-entropy interval: rounds are cheap in memory


class TestMemoryTransport(PartitionConformance):
    deadline = 10.0

    @pytest.fixture(autouse=True)
    def _network(self) -> Iterator[None]:
        self.network = MemoryNetwork(anti_entropy_interval=FAST)
        self.names: list[str] = []
        yield
        self.network.close()
        assert not self.network.stats()["running"]

    def make_transports(self, count: int) -> list[Transport]:
        transports = [self.network.transport() for _ in range(count)]
        self.names = [t.name for t in transports]
        return list(transports)

    def isolate(self, index: int) -> None:
        self.network.partition(self.names[index])

    def heal(self) -> None:
        self.network.heal()


@pytest.fixture
def network() -> Iterator[MemoryNetwork]:
    net = MemoryNetwork(anti_entropy_interval=FAST)
    yield net
    net.close()


@pytest.fixture
def trio(network: MemoryNetwork) -> Iterator[dict[str, Rollout]]:
    replicas = {name: Rollout(transport=network.transport(name)) for name in "abc"}
    try:
        for replica in replicas.values():
            assert replica.wait_synced(10)
        yield replicas
    finally:
        for replica in replicas.values():
            replica.close()


def sync_stats(replica: Rollout) -> dict[str, Any]:
    stats: dict[str, Any] = replica.stats()["sync"]
    return stats


# Faults ---------------------------------------------------------------------------------------


def test_a_partitioned_replica_sees_no_write_until_heal_then_converges(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    a, b, c = trio["a"], trio["b"], trio["c"]
    network.partition("c")
    dropped = sync_stats(c)["messages_dropped"]
    a.activate_user("chat", "during")
    c.activate("c-only")
    # Marker: the delta to c was handled, and lost at the cut (b, on a's side, gets it).
    eventually(lambda: sync_stats(c)["messages_dropped"] > dropped, what="the delta to c lost")
    assert not c.active("chat", "during")
    # b acknowledged a's write. The exchange that proves it went through b's and a's inboxes
    # behind c's deltas (FIFO per inbox), so those were handled too: lost at the cut.
    assert a.wait_synced(10, peers=1)
    assert b.active("chat", "during")
    assert not a.exists("c-only")
    assert not b.exists("c-only")
    assert {m["address"]: m["state"] for m in a.members()} == {
        "memory://memory/b": "connected",
        "memory://memory/c": "down",
    }
    assert sync_stats(a)["peers_connected"] == 1
    assert sync_stats(a)["members"] == 2

    network.heal()
    for replica in trio.values():
        eventually(lambda r=replica: r.active("chat", "during") and r.active("c-only"))  # type: ignore[misc]
    eventually(lambda: a.export() == b.export() == c.export(), what="identical replicas")
    assert all(m["state"] == "connected" for m in a.members())


def test_wait_synced_is_false_during_a_partition_and_true_after_heal(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    a, b, c = trio["a"], trio["b"], trio["c"]
    network.partition("b")
    a.activate("chat")
    assert a.wait_synced(0.3) is False  # b is a member, and cannot have it
    assert a.wait_synced(0.3, peers=1) is True  # c can
    assert c.active("chat")  # a True wait_synced means it is there already, not on its way
    assert not b.active("chat")
    network.heal()
    assert a.wait_synced(10) is True
    assert b.active("chat")


def test_a_partition_between_groups_keeps_each_group_replicating(network: MemoryNetwork) -> None:
    replicas = {name: Rollout(transport=network.transport(name)) for name in "abcd"}
    try:
        network.partition(["a", "b"], ["c", "d"])
        replicas["a"].activate("left")
        replicas["d"].activate("right")
        assert replicas["a"].wait_synced(10, peers=1)
        assert replicas["d"].wait_synced(10, peers=1)
        assert replicas["b"].active("left")
        assert replicas["c"].active("right")
        for name in "cd":
            assert not replicas[name].exists("left")
        for name in "ab":
            assert not replicas[name].exists("right")
        assert network.stats()["partition"] == [["a", "b"], ["c", "d"]]
        network.heal()
        for replica in replicas.values():
            assert replica.wait_synced(10)
        assert all(r.active("left") and r.active("right") for r in replicas.values())
    finally:
        for replica in replicas.values():
            replica.close()


def test_dropped_messages_are_lost_silently_and_anti_entropy_repairs_them(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    a, b = trio["a"], trio["b"]
    network.drop("b")
    a.activate("lost")
    eventually(lambda: sync_stats(b)["messages_dropped"] >= 1, what="the delta to b lost")
    assert not b.active("lost")
    assert all(m["state"] == "connected" for m in a.members())  # nobody noticed
    assert a.wait_synced(0.2) is False
    network.heal()
    # No later write carries it: only a digest exchange can have brought it.
    eventually(lambda: b.active("lost"), what="repaired by anti-entropy")
    assert a.wait_synced(10)


def test_a_pause_holds_messages_in_order_and_loses_none(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    a, b = trio["a"], trio["b"]
    seen: list[set[str]] = []
    b.subscribe(seen.append)
    network.pause("b")
    names = [f"flag-{i:02}" for i in range(20)]
    for name in names:
        a.activate(name)
    # publish() queues synchronously, so the deltas are held right now, and b has none of them.
    assert sync_stats(b)["queued"] >= len(names)
    assert network.stats()["paused"] == ["b"]
    assert not any(b.exists(name) for name in names)
    assert a.wait_synced(0.2) is False
    network.resume()
    assert a.wait_synced(10)
    assert all(b.active(name) for name in names)
    # FIFO per link: in the order written (a digest answer may bring several at once, but
    # always a prefix of a's writes, so the order holds).
    assert [name for changed in seen for name in sorted(changed)] == names
    assert sync_stats(b)["messages_dropped"] == 0


def test_pausing_the_whole_network_and_resuming_it(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    network.pause()
    trio["a"].activate("held")
    assert network.stats()["paused"] == "all"
    assert network.stats()["queued"] >= 2
    with pytest.raises(ValueError, match="without names"):
        network.resume("b")
    assert not trio["b"].exists("held")
    network.resume()
    assert trio["a"].wait_synced(10)
    assert trio["b"].active("held")
    assert trio["c"].active("held")


def test_faults_name_open_transports_only(network: MemoryNetwork) -> None:
    network.transport("a")
    for fault in (network.partition, network.drop, network.pause):
        with pytest.raises(KeyError, match="'typo'"):
            fault("typo")
    with pytest.raises(ValueError, match="two sides"):
        network.partition(["a"], ["a"])


# Members, names, stats ------------------------------------------------------------------------


def test_members_and_stats_describe_the_network(
    network: MemoryNetwork, trio: dict[str, Rollout]
) -> None:
    a = trio["a"]
    a.activate("chat")
    assert a.wait_synced(10)
    members = a.members()
    assert [m["address"] for m in members] == ["memory://memory/b", "memory://memory/c"]
    assert [m["node"] for m in members] == [trio[n].stats()["node"] for n in "bc"]
    for member in members:
        assert member["state"] == "connected"
        assert member["seed"] is False
        assert isinstance(member["last_sync"], float)
    eventually(lambda: all(m["clock_offset_ms"] is not None for m in a.members()))
    sync = sync_stats(a)
    assert sync["transport"] == "memory"
    assert sync["name"] == "a"
    assert sync["members"] == sync["peers_connected"] == 2
    assert sync["sequence"] == 1
    assert sync["deltas_sent"] == 2
    assert sync["acks_received"] >= 2
    assert sync["clock_skew"] is None
    assert sync["errors"] == sync["merge_errors"] == 0
    assert set(sync["last_sync"]) == {"b", "c"}
    stats = network.stats()
    assert stats["transports"] == ["a", "b", "c"]
    assert stats["running"] is True
    assert stats["delivered"] > 0


def test_names_are_unique_among_open_transports_and_free_again_after_close(
    network: MemoryNetwork,
) -> None:
    first = network.transport("a")
    with pytest.raises(ValueError, match="open on this network"):
        network.transport("a")
    generated = network.transport()
    assert generated.name.startswith("node-")
    first.close()
    assert network.transport("a").name == "a"


def test_a_restart_under_the_same_name_is_a_new_member(network: MemoryNetwork) -> None:
    a = Rollout(transport=network.transport("a"))
    b = Rollout(transport=network.transport("b"))
    try:
        a.activate("chat")
        assert a.wait_synced(10)
        b.close()
        assert a.wait_synced(1)  # b has left: nobody to wait for
        b = Rollout(transport=network.transport("b"))
        assert a.wait_synced(10)  # the new b acknowledged a's state itself
        assert b.active("chat")
    finally:
        a.close()
        b.close()


def test_a_clock_ahead_of_the_others_refuses_local_writes(network: MemoryNetwork) -> None:
    from rollout.errors import ClockSkewError
    from rollout.testing import FakeClock

    now = FakeClock()
    ahead = FakeClock()
    ahead.advance(120_000)  # two minutes ahead; max_offset is 30 s by default
    honest = [Rollout(transport=network.transport(), clock=now) for _ in range(2)]
    fast = Rollout(transport=network.transport("fast"), clock=ahead)
    try:
        eventually(lambda: sync_stats(fast)["clock_skew"] is not None, what="skew detected")
        with pytest.raises(ClockSkewError, match="ahead of the majority of its peers"):
            fast.activate("chat")
        assert sync_stats(fast)["clock"]["state"] == "outlier"
        # The two whose clocks agree keep writing, and name the outlier.
        eventually(lambda: sync_stats(honest[0])["clock"]["disagreeing"] == ["fast"])
        honest[0].activate("honest")
        assert sync_stats(honest[0])["clock"]["state"] == "ok"
        ahead.set(now())  # NTP fixed it
        eventually(lambda: sync_stats(fast)["clock_skew"] is None, what="skew cleared")
        fast.activate("chat")
        assert fast.wait_synced(10)
        assert all(replica.active("chat") for replica in honest)
    finally:
        for replica in [*honest, fast]:
            replica.close()


def test_a_clock_behind_the_others_refuses_and_the_two_healthy_keep_writing(
    network: MemoryNetwork,
) -> None:
    from rollout.errors import ClockSkewError
    from rollout.testing import FakeClock

    now, behind = FakeClock(), FakeClock()
    now.advance(120_000)  # the others are two minutes ahead of `behind`
    honest = [Rollout(transport=network.transport(), clock=now) for _ in range(2)]
    slow = Rollout(transport=network.transport("slow"), clock=behind)
    try:
        eventually(lambda: sync_stats(slow)["clock"]["state"] == "outlier", what="outlier")
        with pytest.raises(ClockSkewError, match=r"1200\d\d ms behind the majority"):
            slow.activate("chat")
        for i, replica in enumerate(honest):
            replica.activate(f"from-{i}")
        eventually(
            lambda: all(r.active("from-0") and r.active("from-1") for r in honest),
            what="each healthy replica has the other's write",
        )
        assert [m["clock_agrees"] for m in honest[0].members()] == [True, False]
    finally:
        for replica in [*honest, slow]:
            replica.close()


# Lifecycle and threads ------------------------------------------------------------------------


def test_the_delivery_thread_ends_with_the_last_transport(network: MemoryNetwork) -> None:
    replicas = [Rollout(transport=network.transport()) for _ in range(2)]
    assert network.stats()["running"]
    for replica in replicas:
        replica.close()
    assert not network.stats()["running"]
    assert not [t for t in threading.enumerate() if t.name == "rollout-memory-memory"]
    again = Rollout(transport=network.transport())  # and a new one starts with the next
    try:
        assert network.stats()["running"]
    finally:
        again.close()


def test_closing_the_network_closes_its_transports(network: MemoryNetwork) -> None:
    transport = network.transport()
    flags = Rollout(transport=transport)
    network.close()
    network.close()
    assert sync_stats(flags)["closed"] is True
    flags.activate("chat")  # local only, never raises
    assert flags.active("chat")
    assert flags.wait_synced(0.1) is False
    with pytest.raises(ClosedError):
        network.transport()
    with pytest.raises(ClosedError):
        transport.start(_Untouchable())
    flags.close()


def test_a_transport_starts_once() -> None:
    with MemoryNetwork() as network:
        transport = network.transport()
        with (
            Rollout(transport=transport),
            pytest.raises(RuntimeError, match="started already"),
        ):
            transport.start(_Untouchable())
    assert network.stats()["closed"]


def test_a_subscriber_may_close_its_own_replica_and_call_wait_synced(
    network: MemoryNetwork,
) -> None:
    a, b, c = (Rollout(transport=network.transport(name)) for name in "abc")
    answers: list[bool] = []

    def on_change(changed: set[str]) -> None:
        if "stop" in changed:
            answers.append(b.wait_synced(5))  # cannot wait for its own thread: answers at once
            b.close()  # must not wait for (or join) the thread it runs on

    b.subscribe(on_change)
    try:
        a.activate("stop")
        eventually(lambda: sync_stats(b)["closed"], what="b closed itself")
        assert len(answers) == 1
        a.activate("after")
        assert a.wait_synced(10)  # the delivery thread is alive and well: c acknowledged it
        assert c.active("after")
        assert not b.exists("after")
    finally:
        for replica in (a, b, c):
            replica.close()


def test_replicas_writing_to_each_other_at_once_do_not_deadlock(network: MemoryNetwork) -> None:
    # Each writes while the other's merges run; a merge run inside publish() would take the
    # other replica's write lock under its own, the two in opposite orders.
    replicas = [Rollout(transport=network.transport()) for _ in range(2)]
    start = threading.Barrier(2)

    def write(replica: Rollout, me: int) -> None:
        start.wait(10)
        for i in range(200):
            replica.activate_user("chat", f"{me}-{i}")

    threads = [threading.Thread(target=write, args=(r, i)) for i, r in enumerate(replicas)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
            assert not thread.is_alive()
        for replica in replicas:
            assert replica.wait_synced(10)
        assert replicas[0].export() == replicas[1].export()
        assert len(replicas[0].get("chat").users) == 400
    finally:
        for replica in replicas:
            replica.close()


# The port: only SyncHost, only from the delivery thread, never after close --------------------


class _Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the host was used: {name}")


class _Recorder:
    """Stands between a transport and its host: lets through only SyncHost's members."""

    ALLOWED = frozenset(
        {
            "node_id",
            "physical_ms",
            "max_offset_ms",
            "replicated",
            "digests",
            "merge_remote",
            "merge_from_peer",
            "applied_own_write",
            "check_clock_step",
            "set_clock_skew",
        }
    )

    def __init__(self, host: SyncHost) -> None:
        self.host = host
        self.calls: list[tuple[str, str]] = []  # (member, thread name)
        self.misused: list[str] = []
        self.closed = False
        self.after_close: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name not in self.ALLOWED:
            self.misused.append(name)
            raise AttributeError(name)
        self.calls.append((name, threading.current_thread().name))
        if self.closed:
            self.after_close.append(name)
        return getattr(self.host, name)


class _RecordingTransport(MemoryTransport):
    recorder: _Recorder

    def start(self, host: SyncHost) -> None:
        self.recorder = _Recorder(host)
        super().start(self.recorder)

    def close(self, timeout: float = 5.0) -> None:
        super().close(timeout)
        if hasattr(self, "recorder"):
            self.recorder.closed = True


def test_the_host_is_reached_only_through_sync_host_from_the_delivery_thread(
    network: MemoryNetwork,
) -> None:
    watched = _RecordingTransport(network, name="watched")
    a = Rollout(transport=watched)
    b = Rollout(transport=network.transport("b"))
    c = Rollout(transport=network.transport("c"))
    try:
        a.activate("from-a")
        b.activate("from-b")
        network.partition("c")
        c.activate("from-c")
        network.heal()
        for replica in (a, b, c):
            assert replica.wait_synced(10)
        assert a.active("from-c")
        a.members()
        a.stats()
        a.close()
        # After close, b and c go on; once their later writes have crossed the same thread,
        # nothing can still be on its way to a's host.
        b.activate("later")
        assert b.wait_synced(10)
        assert c.active("later")
        recorder = watched.recorder
        assert recorder.misused == []
        assert recorder.after_close == []
        used = {name for name, _ in recorder.calls}
        assert {"node_id", "digests", "replicated", "merge_from_peer", "physical_ms"} <= used
        assert {thread for _, thread in recorder.calls} == {"rollout-memory-memory"}
    finally:
        for replica in (a, b, c):
            replica.close()


# Fork -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_replicates_among_its_own_copies_only(network: MemoryNetwork) -> None:
    a = Rollout(transport=network.transport("a"))
    b = Rollout(transport=network.transport("b"))
    try:
        a.activate("before-fork")
        assert a.wait_synced(10)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return into pytest
            code = 1
            try:
                a.activate("in-child")
                ok = a.wait_synced(10) and b.active("in-child") and b.active("before-fork")
                code = 0 if ok and network.stats()["transports"] == ["a", "b"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent goes on; its marker write crossed a -> b after the child's could have.
        a.activate("in-parent")
        assert a.wait_synced(10)
        assert b.active("in-parent")
        assert not b.exists("in-child")
    finally:
        a.close()
        b.close()


def test_wait_synced_is_false_at_once_when_a_member_refuses_what_it_covers(
    network: MemoryNetwork,
) -> None:
    from rollout.testing import FakeClock

    now = FakeClock()
    # `lax` trusts timestamps two hours ahead; `strict` (the default 30 s) refuses them.
    lax = Rollout(transport=network.transport("lax"), clock=now, max_offset=7200)
    strict = Rollout(transport=network.transport("strict"), clock=now)
    try:
        lax.activate("warmup")
        assert lax.wait_synced(10)
        future = Rollout(clock=FakeClock(now() + 3_600_000))
        future.activate("bomb")
        lax.merge(future.export())
        lax.activate_user("bomb", 7)  # stamped +1 h: lax's clock observed the merge
        result: list[bool] = []
        waiter = threading.Thread(target=lambda: result.append(lax.wait_synced(120)))
        waiter.start()
        waiter.join(60)  # a wait that ran to its 120 s time-out would fail here
        assert result == [False]
        assert [(e.flag, e.key, e.origin) for e in strict.quarantined()] == [
            ("bomb", "exists", "peer"),
            ("bomb", "percentage", "peer"),
            ("bomb", "user:7", "peer"),
        ]
        strict.drop_quarantined("bomb")
        lax.activate("later")  # still refused: lax holds the bomb, strict judged it
        assert lax.wait_synced(10) is False
    finally:
        lax.close()
        strict.close()
