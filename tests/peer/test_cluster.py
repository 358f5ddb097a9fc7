"""A peer-to-peer cluster of real processes on loopback: replication, faults, security, TLS.

The fault cases run every node as its own process (``rollout.testing.cluster``) and break them
for real: SIGSTOP, SIGKILL, links cut by a fault-injecting proxy, a node with the wrong secret,
garbage bytes on a node's listening socket, a clock an hour ahead. Quick cases run two or three
``Rollout`` objects in the test process. Every wait is bounded; nothing asserts on speed.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rollout import Rollout
from rollout.peer import PeerTransport
from rollout.testing import cluster as testing_cluster
from rollout.testing import eventually
from rollout.testing.cluster import Cluster, Node, NodeError, free_port
from rollout.testing.proxy import LinkTable

from . import wire
from .nodes import sync_stats
from .rounds import all_rise

SECRET = testing_cluster.DEFAULT_SECRET  # what testing_cluster.Node uses by default
FAST = 0.2  # anti-entropy interval: quick convergence after faults
WAIT = 20.0  # upper bound on every liveness wait; the happy path never gets near it


# Helpers ------------------------------------------------------------------------------------


def wait_converged(nodes: Sequence[Node], timeout: float = WAIT) -> dict[str, Any]:
    return testing_cluster.wait_converged(nodes, timeout)


def has_flag(node: Node, flag: str) -> bool:
    return flag in node.call("features")


def users(state: dict[str, Any], flag: str) -> set[str]:
    return set(state[flag]["users"]) if flag in state else set()


def in_parallel(*calls: Callable[[], object]) -> None:
    """Run the calls at once (one thread each, released together); re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    if errors:
        raise errors[0]


@contextlib.contextmanager
def running(*nodes: Node) -> Iterator[None]:
    """Stop every node (and so its process) on the way out, whatever happened."""
    try:
        yield
    finally:
        for node in nodes:
            node.stop()


def make_cluster(size: int, directory: Path, **options: Any) -> Cluster:
    """``Cluster(size, directory, **options)``, started, with ports from :func:`free_port`."""
    directory.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(0, directory, start=False)
    ports = [free_port() for _ in range(size)]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    cluster.nodes = [
        Node(f"n{i}", directory, port=port, peers=addresses[:i] + addresses[i + 1 :], **options)
        for i, port in enumerate(ports)
    ]
    try:
        for node in cluster:
            node.start()
        cluster.wait_clocks_judged()  # a node with peers writes once its clock is confirmed
    except BaseException:
        cluster.close()
        raise
    return cluster


def peer_transport(peers: Sequence[str] = (), **options: Any) -> PeerTransport:
    return PeerTransport(
        listen="127.0.0.1:0", peers=peers, secret=SECRET, anti_entropy_interval=FAST, **options
    )


def address_of(flags: Rollout) -> str:
    address: str = flags.stats()["sync"]["address"]
    return address


# A 5-node cluster: writes anywhere, concurrent writes -------------------------------------------


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with make_cluster(5, tmp_path_factory.mktemp("five"), anti_entropy_interval=FAST) as cluster:
        yield cluster


def test_a_write_on_any_node_is_visible_on_all(five: Cluster) -> None:
    for i, node in enumerate(five):
        node.call("activate_user", f"written-on-{i}", i)
    expected = {f"written-on-{i}" for i in range(len(five))}
    five.wait_until(lambda node: expected <= set(node.call("features")))
    state = five.wait_converged()
    for i in range(len(five)):
        assert state[f"written-on-{i}"]["users"] == [str(i)]
    for node in five:
        assert all(node.call("active", f"written-on-{i}", i) for i in range(len(five)))


def test_concurrent_writes_of_different_users_to_one_flag_all_survive(five: Cluster) -> None:
    in_parallel(
        *(
            lambda node=node, i=i: node.call("activate_user", "shared", 100 + i)
            for i, node in enumerate(five)
        )
    )
    expected = {str(100 + i) for i in range(len(five))}
    five.wait_until(lambda node: users(node.call("state"), "shared") == expected)
    assert users(five.wait_converged(), "shared") == expected


def test_one_flag_written_on_two_nodes_at_once_converges_to_one_value(five: Cluster) -> None:
    for round_ in range(3):
        flag = f"contested-{round_}"
        in_parallel(
            functools.partial(five[0].call, "activate_percentage", flag, 25),
            functools.partial(five[3].call, "activate_percentage", flag, 75),
        )
        five.wait_until(functools.partial(has_flag, flag=flag))
        state = five.wait_converged()
        assert state[flag]["percentage"] in (25.0, 75.0)
        for node in five:
            assert node.call("get", flag) == state[flag]


# Faults -----------------------------------------------------------------------------------------


def test_a_paused_node_catches_up_when_resumed(tmp_path: Path) -> None:
    with make_cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        cluster[0].call("activate", "before")
        cluster.wait_converged()
        cluster[2].pause()
        try:
            for i in range(20):
                cluster[i % 2].call("activate_user", "while-paused", i)
            cluster[1].call("set_feature_data", "before", {"owner": "ops"})
            wait_converged(cluster.nodes[:2])
            # The others keep working while it is stopped: it does not hold them up.
            cluster[0].call("activate", "still-writable")
        finally:
            cluster[2].resume()
        state = cluster.wait_converged()
        assert users(state, "while-paused") == {str(i) for i in range(20)}
        assert state["before"]["data"] == {"owner": "ops"}
        assert "still-writable" in state


def test_a_killed_node_restarts_on_its_file_and_loses_no_returned_write(tmp_path: Path) -> None:
    with make_cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        victim = cluster[2]
        cluster[0].call("activate", "base")
        cluster.wait_converged()
        for i in range(20):
            victim.call("activate_user", "on-victim", i)
        victim.call("activate_percentage", "victim-pct", 33)
        # A stream of writes on the victim, killed in the middle of it: every call that
        # returned must survive; the one in flight may or may not.
        returned: list[int] = []
        stop_writing = threading.Event()

        def write_until_killed() -> None:
            for i in range(100_000):
                if stop_writing.is_set():
                    return
                try:
                    victim.call("activate_user", "stream", i, timeout=10.0)
                except (NodeError, OSError, ValueError):
                    return  # killed under us
                returned.append(i)

        writer = threading.Thread(target=write_until_killed)
        writer.start()
        try:
            eventually(lambda: len(returned) >= 20, what="the victim takes a stream of writes")
            victim.kill()
        finally:
            stop_writing.set()
            writer.join(WAIT)
        assert victim.process is None
        assert not writer.is_alive()
        # The others keep writing while it is dead.
        cluster[0].call("activate_user", "while-dead", "a")
        cluster[1].call("activate_user", "while-dead", "b")

        # Its file alone, before it can hear from anyone, holds every write that returned.
        alone = Node(
            "n2-alone", tmp_path, port=free_port(), store=victim.store, anti_entropy_interval=FAST
        )
        with running(alone):
            alone.start()
            on_disk = alone.call("state")
        assert users(on_disk, "on-victim") == {str(i) for i in range(20)}
        assert on_disk["victim-pct"]["percentage"] == 33.0
        assert {str(i) for i in returned} <= users(on_disk, "stream")

        victim.start()
        state = cluster.wait_converged()
        assert users(state, "on-victim") == {str(i) for i in range(20)}
        assert state["victim-pct"]["percentage"] == 33.0
        assert {str(i) for i in returned} <= users(state, "stream")
        assert users(state, "while-dead") == {"a", "b"}
        assert "base" in state


def test_a_partition_with_writes_on_both_sides_heals_to_one_state(tmp_path: Path) -> None:
    names = ["a", "b", "c", "d", "e"]
    ports = {name: free_port() for name in names}
    with LinkTable({name: f"127.0.0.1:{port}" for name, port in ports.items()}) as links:
        nodes = [
            Node(
                name,
                tmp_path,
                port=ports[name],
                peers=list(links.peers(name).values()),
                learn_members=False,  # every link goes through its proxy
                anti_entropy_interval=FAST,
            )
            for name in names
        ]
        with running(*nodes):
            for node in nodes:
                node.start()
            nodes[0].call("activate_user", "both", "before")
            wait_converged(nodes)
            left, right = nodes[:2], nodes[2:]
            links.partition(names[:2], names[2:])
            eventually(
                lambda: (
                    all(sync_stats(n)["peers_connected"] == len(left) - 1 for n in left)
                    and all(sync_stats(n)["peers_connected"] == len(right) - 1 for n in right)
                ),
                what="the partition is seen by every node",
            )
            left[0].call("activate_user", "both", "left")
            left[1].call("activate_percentage", "contested", 10)
            left[1].call("activate", "left-only")
            right[0].call("activate_user", "both", "right")
            right[1].call("activate_percentage", "contested", 90)
            right[2].call("deactivate_user", "both", "before")
            wait_converged(left)
            wait_converged(right)
            # The cut is real: neither side has heard of the other's writes.
            assert "left-only" not in right[0].call("features")
            assert "right" not in users(left[0].call("state"), "both")
            links.heal_all()
            state = wait_converged(nodes)
        assert users(state, "both") == {"left", "right"}
        assert state["contested"]["percentage"] in (10.0, 90.0)
        assert "left-only" in state


@pytest.mark.parametrize("secret", [secrets.token_urlsafe(32), None])
def test_a_node_with_the_wrong_secret_gets_no_state_and_changes_none(
    tmp_path: Path, secret: str | None
) -> None:
    with make_cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        cluster[0].call("activate_user", "chat", 1)
        cluster[1].call("set_feature_data", "chat", {"owner": "me"})
        before = cluster.wait_converged()
        intruder = Node(
            "intruder",
            tmp_path,
            port=free_port(),
            peers=[node.address for node in cluster],
            secret=secret,
            anti_entropy_interval=FAST,
        )
        with running(intruder):
            intruder.start()
            # No peer ever confirms its clock: it cannot even write locally.
            for op, args in (("activate", ("evil",)), ("activate_user", ("chat", 666))):
                with pytest.raises(NodeError, match="not confirmed"):
                    intruder.call(op, *args)
            # Every connection either way ends at its first frame after the hello, refused,
            # and is dialled again: count a few such rounds at every node, and at the intruder
            # (what the cluster sends it), so whatever damage a round could do is done.
            refusals = [functools.partial(_frames_rejected, n, "auth") for n in cluster]
            # The intruder without a secret reads the cluster's frames as malformed.
            refusals.append(functools.partial(_frames_rejected, intruder, "auth", "format"))
            eventually(
                all_rise(refusals, 3),
                what="three more refusals at every cluster node and at the intruder",
            )
            assert intruder.call("features") == []
            assert intruder.call("stats")["sync"]["clock"]["state"] == "unconfirmed"
            assert cluster.wait_converged() == before
            # A refused connection counts as connected between its hello and its next frame.
            eventually(lambda: sync_stats(intruder)["peers_connected"] == 0)
            cluster.wait_until(lambda node: sync_stats(node)["peers_connected"] == 2)


def _frames_rejected(node: Node, *reasons: str) -> int:
    stats = sync_stats(node)
    return sum(int(stats[f"frames_rejected_{reason}"]) for reason in reasons)


def _registers_rejected(node: Node) -> int:
    rejected: int = node.call("stats")["registers_rejected"]
    return rejected


# Garbage on the wire -------------------------------------------------------------------------


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _handshake(sock: socket.socket, secret: bytes) -> bytes:
    """Be a peer that knows the secret; return the key for the frames it sends next (from 1)."""
    return wire.dial(sock, secret).send_key


def _drain_until_closed(sock: socket.socket, timeout: float = 10.0) -> None:
    """Read until the node closes the connection (it must: the input is bad or over)."""
    sock.settimeout(timeout)
    with contextlib.suppress(ConnectionError):
        while sock.recv(65536):
            pass


Attack = tuple[str, bytes, int]  # (how, bytes, truncate at: -1 for no truncation)

raw_bytes = st.tuples(st.just("raw"), st.binary(max_size=4096), st.just(-1))
oversized = st.tuples(
    st.just("raw"),
    st.builds(
        lambda length, rest: length.to_bytes(4, "big") + rest,
        st.integers(64 * 1024 * 1024 + 1, 2**32 - 1),
        st.binary(max_size=256),
    ),
    st.just(-1),
)
truncated_opening = st.tuples(st.just("opening"), st.just(b""), st.integers(0, 80))
# After a real handshake: frames MAC'd with the right session key but bad inside (any version,
# any kind, payload not JSON or not the kind's schema), possibly cut short.
authenticated = st.tuples(
    st.just("after-handshake"),
    st.builds(
        lambda version, kind, payload: bytes((version, kind)) + payload,
        st.sampled_from([1, 1, 1, 0, 2, 255]),
        st.integers(0, 255),
        st.one_of(
            st.binary(max_size=512),
            st.sampled_from(
                [
                    b"{}",
                    b"[]",
                    b'{"seq": -1, "flags": {}}',
                    b'{"seq": 1, "flags": {"chat": 1}}',
                    b'{"seq": 1, "flags": {"chat": {"user:1": [1, 2]}}}',
                    b'{"seq": 1, "names": ["../../etc"]}',
                    b'{"seq": 1, "clock": 1, "digests": {"chat": "zz"}}',
                    b"[" * 100_000,
                    b'{"seq": NaN}',
                ]
            ),
        ),
    ),
    st.integers(-1, 600),
)


def _attack(address: str, secret: bytes, attack: Attack) -> None:
    how, data, cut = attack
    with socket.create_connection(_split(address), timeout=10.0) as sock:
        try:
            if how == "raw":
                sock.sendall(data)
            elif how == "opening":  # and a proof that is wrong, both possibly cut short
                sock.sendall((wire.opening(os.urandom(32)) + os.urandom(32))[:cut])
            else:
                key = _handshake(sock, secret)
                frame = wire.frame(key, 1, data)
                sock.sendall(frame if cut < 0 else frame[:cut])
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return  # the node already closed on us: fine, that is what it should do
        _drain_until_closed(sock)


def test_garbage_oversized_and_truncated_frames_leave_a_node_running_and_correct(
    tmp_path: Path,
) -> None:
    with make_cluster(2, tmp_path, anti_entropy_interval=FAST) as cluster:
        target, peer = cluster[0], cluster[1]
        target.call("activate_user", "chat", 1)
        peer.call("activate_percentage", "beta", 20)
        before = cluster.wait_converged()
        rejected_before = sync_stats(target)["frames_rejected_format"]

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.one_of(raw_bytes, oversized, truncated_opening, authenticated))
        @example(("raw", (2**32 - 1).to_bytes(4, "big") + b"x" * 64, -1))
        @example(("raw", b"\x00\x00\x00\x01\x01", -1))
        @example(("opening", b"", 10))
        @example(("after-handshake", b"\x01\x02not json", -1))
        @example(("after-handshake", b"\x01\x03" + b"{}" * 100, 40))
        def barrage(attack: Attack) -> None:
            _attack(target.address, SECRET.encode(), attack)

        barrage()

        assert target.call("state") == before
        assert sync_stats(target)["frames_rejected_format"] > rejected_before
        assert sync_stats(target)["peers_connected"] == 1
        # Still replicating, both ways.
        target.call("activate_user", "after", "from-target")
        peer.call("activate_user", "after", "from-peer")
        cluster.wait_until(
            lambda node: (
                users(node.call("state"), "after")
                == {
                    "from-target",
                    "from-peer",
                }
            )
        )
        state = cluster.wait_converged()
        assert {name: state[name] for name in before} == before


# Clocks ---------------------------------------------------------------------------------------


def test_a_node_an_hour_ahead_refuses_writes_and_its_registers_are_rejected(
    tmp_path: Path,
) -> None:
    hour = 3_600_000
    with make_cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        cluster[0].call("activate_user", "chat", "honest")
        before = cluster.wait_converged()
        # Alone, it has no peer to compare clocks with: its writes are stamped an hour ahead.
        alone = Node(
            "ahead", tmp_path, port=free_port(), clock_offset_ms=hour, anti_entropy_interval=FAST
        )
        with running(alone):
            alone.start()
            alone.call("activate_user", "chat", "from-the-future")
            alone.call("activate", "future")
        # Restarted on the same file and port, now with the cluster as its peers.
        ahead = Node(
            "ahead",
            tmp_path,
            port=_split(alone.address)[1],
            store=alone.store,
            peers=[node.address for node in cluster],
            clock_offset_ms=hour,
            anti_entropy_interval=FAST,
        )
        with running(ahead):
            ahead.start()
            eventually(
                lambda: sync_stats(ahead)["clock_skew"] is not None,
                what="the node finds its clock is ahead of its peers",
            )
            with pytest.raises(NodeError) as refused:
                ahead.call("activate", "refused")
            assert refused.value.kind == "ClockSkewError"
            # Each anti-entropy round offers its registers again: wait for three more refusals
            # at every node, so that nothing a round could let in is still on its way.
            eventually(
                all_rise([functools.partial(_registers_rejected, n) for n in cluster], 3),
                what="every node rejects the registers from the future three more times",
            )
            state = cluster.wait_converged()
            assert state == before
            assert "future" not in state
            assert users(state, "chat") == {"honest"}
            assert "refused" not in ahead.call("features")
            for node in cluster:
                assert sync_stats(node)["clock_skew"] is None


# Processes ------------------------------------------------------------------------------------


def test_close_leaves_cleanly_and_a_restarted_node_rejoins_by_itself(tmp_path: Path) -> None:
    with make_cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        leaving = cluster[2]
        cluster[0].call("activate", "before")
        cluster.wait_converged()
        cluster.wait_until(
            lambda node: sync_stats(node)["peers_connected"] == 2, nodes=cluster.nodes
        )
        # exit closes its Rollout; the call fails with TimeoutError if close() hangs.
        leaving.call("exit", timeout=15.0)
        leaving.stop()
        assert leaving.process is None

        def sees_it_down(node: Node) -> bool:
            states = {m["address"]: m["state"] for m in node.call("members")}
            return states.get(leaving.address) == "down"

        # A goodbye, not a timeout: well under the 60 s member timeout.
        cluster.wait_until(sees_it_down, nodes=cluster.nodes[:2], timeout=10.0)
        for node in cluster.nodes[:2]:
            assert sync_stats(node)["peers_connected"] == 1
        cluster[1].call("activate_user", "while-away", 7)

        leaving.start()
        state = cluster.wait_converged()
        assert users(state, "while-away") == {"7"}
        cluster.wait_until(
            lambda node: sync_stats(node)["peers_connected"] == 2, nodes=cluster.nodes
        )
        for node in cluster.nodes[:2]:
            states = {m["address"]: m["state"] for m in node.call("members")}
            assert states[leaving.address] == "connected"


# In-process: quick cases -------------------------------------------------------------------------


def mesh_is_settled(replicas: Sequence[Rollout], quiet: float = 1.0) -> bool:
    """Every replica connected to all the others, and no connection opened for ``quiet`` s.

    Two nodes that learn of each other dial each other at once and then drop one of the two
    connections; a write made in that moment reaches that peer by anti-entropy, not as a delta.
    """
    full = len(replicas) - 1

    def snapshot() -> list[tuple[int, int]]:
        stats = [r.stats()["sync"] for r in replicas]
        return [(s["peers_connected"], s["connections_opened"]) for s in stats]

    before = snapshot()
    if any(connected != full for connected, _ in before):
        return False
    time.sleep(quiet)
    return snapshot() == before


def test_in_process_replicas_replicate_and_count_it_in_stats() -> None:
    with Rollout(transport=peer_transport()) as a:
        with (
            Rollout(transport=peer_transport([address_of(a)])) as b,
            Rollout(transport=peer_transport([address_of(a)])) as c,
        ):
            everyone = (a, b, c)
            eventually(
                lambda: mesh_is_settled(everyone),
                what="a full mesh (b and c learn of each other through a)",
            )
            eventually(lambda: a.wait_synced(1.0) and b.wait_synced(1.0) and c.wait_synced(1.0))
            start = {id(r): r.stats()["sync"] for r in everyone}

            b.activate_user("chat", 42)
            assert b.wait_synced(WAIT)
            eventually(lambda: all(r.active("chat", 42) for r in everyone))
            c.activate_group("chat", "admins")
            eventually(lambda: all(r.get("chat").groups == {"admins"} for r in everyone))

            def moved(r: Rollout, counter: str) -> int:
                now: int = r.stats()["sync"][counter]
                then: int = start[id(r)][counter]
                return now - then

            assert moved(b, "deltas_sent") >= 2  # one write, two peers
            assert moved(c, "deltas_sent") >= 2
            assert moved(a, "deltas_received") >= 2
            assert moved(a, "deltas_sent") == 0  # a wrote nothing
            # Anti-entropy keeps comparing digests, on every node, with nothing to send.
            eventually(
                lambda: all(
                    moved(r, "digests_sent") >= 2 and moved(r, "digests_compared") >= 1
                    for r in everyone
                )
            )
            for r in everyone:
                sync = r.stats()["sync"]
                assert sync["peers_connected"] == 2
                assert sync["frames_rejected_auth"] == 0
                assert sync["frames_rejected_format"] == 0
                assert r.stats()["writes"] + r.stats()["merges"] >= 2
        # b and c closed: a sees its peers go.
        eventually(lambda: a.stats()["sync"]["peers_connected"] == 0, timeout=10.0)


def test_close_also_closes_connections_still_in_their_handshake() -> None:
    """A stranger (a port scanner, a health check, a peer mid-handshake) is connected when
    close() runs: close() must end that connection too, not leave it to the garbage collector."""
    flags = Rollout(transport=peer_transport())
    try:
        with socket.create_connection(_split(address_of(flags)), timeout=5.0) as stranger:
            stranger.sendall(wire.opening(os.urandom(32)))
            wire.recv_exactly(stranger, wire.OPENING_SIZE)  # the node has accepted us
            flags.close()
            stranger.settimeout(5.0)
            try:
                while stranger.recv(65536):
                    pass
                closed = True
            except ConnectionError:
                closed = True
            except TimeoutError:
                closed = False
            assert closed, "close() returned but left an accepted connection open"
    finally:
        flags.close()
        del flags
        gc.collect()  # an abandoned transport warns here (ResourceWarning), in this test


def test_listening_beyond_loopback_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret") as refused:
        Rollout(listen="0.0.0.0:0")
    assert "0.0.0.0:0" in str(refused.value)
    with Rollout(listen="0.0.0.0:0", insecure=True) as open_to_all:
        assert open_to_all.stats()["sync"]["address"] is not None
    with Rollout(listen="0.0.0.0:0", secret=secrets.token_urlsafe(32)) as guarded:
        assert guarded.stats()["sync"]["address"] is not None


def test_tls_replicas_replicate_and_a_plain_client_gets_nothing(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    tls: dict[str, Any] = {"secret": SECRET, "ssl": server, "client_ssl": client}
    with Rollout(listen="127.0.0.1:0", **tls) as a:
        a.activate_user("secret-flag", "alice")
        with Rollout(listen="127.0.0.1:0", peers=[address_of(a)], **tls) as b:
            eventually(lambda: b.active("secret-flag", "alice"), what="b gets a's state over TLS")
            b.activate_user("secret-flag", "bob")
            eventually(lambda: a.active("secret-flag", "bob"), what="a gets b's write over TLS")
            assert b.stats()["sync"]["peers_connected"] == 1

        # Plain TCP, even from a peer that knows the secret: no state comes back.
        with Rollout(listen="127.0.0.1:0", peers=[address_of(a)], secret=SECRET) as plain:

            def dial_ended() -> str:
                # "connecting" until its first dial ends: "down" if refused, else "connected".
                member = next(m for m in plain.members() if m["address"] == address_of(a))
                state: str = member["state"]
                return "" if state == "connecting" else state

            assert eventually(dial_ended, what="plain's first dial to a ends") == "down"
            assert plain.features() == []
            assert plain.stats()["sync"]["peers_connected"] == 0
        with socket.create_connection(_split(address_of(a)), timeout=10.0) as sock:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(wire.opening(os.urandom(32)))
            received = b""
            with contextlib.suppress(ConnectionError):
                while chunk := sock.recv(65536):
                    received += chunk
        assert b"secret-flag" not in received
        assert b"alice" not in received
        assert a.features() == ["secret-flag"]


def test_mutual_tls_admits_only_peers_with_a_client_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate  # one self-signed certificate, trusted as its own authority
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cafile=str(cert))
    client = ssl.create_default_context(cafile=str(cert))
    client.load_cert_chain(cert, key)
    mutual: dict[str, Any] = {"secret": SECRET, "ssl": server, "client_ssl": client}
    with Rollout(listen="127.0.0.1:0", **mutual) as a:
        a.activate_user("mtls-flag", "alice")
        with Rollout(listen="127.0.0.1:0", peers=[address_of(a)], **mutual) as b:
            eventually(lambda: b.active("mtls-flag", "alice"), what="b gets a's state over mTLS")
        # It trusts a's certificate and knows the secret, but has no client certificate.
        anonymous = ssl.create_default_context(cafile=str(cert))
        without: dict[str, Any] = {"secret": SECRET, "ssl": server, "client_ssl": anonymous}
        with Rollout(listen="127.0.0.1:0", peers=[address_of(a)], **without) as c:

            def dial_ended() -> str:
                member = next(m for m in c.members() if m["address"] == address_of(a))
                state: str = member["state"]
                return "" if state == "connecting" else state

            assert eventually(dial_ended, what="c's first dial to a ends") == "down"
            assert c.features() == []
            assert a.stats()["sync"]["peers_connected"] == 0


def test_a_stranger_stalling_in_the_tls_handshake_is_closed_at_the_handshake_time_out(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    # asyncio would wait 60 s for a TLS handshake; the node waits its own handshake_timeout.
    transport = peer_transport(ssl=server, handshake_timeout=1.0)
    with (
        Rollout(transport=transport) as node,
        socket.create_connection(_split(address_of(node)), timeout=WAIT) as stranger,
    ):
        stranger.settimeout(WAIT)
        with contextlib.suppress(ConnectionError):
            assert stranger.recv(65536) == b""  # closed, not a byte sent


#: A node with TLS as its own process, so the test can stop it: the address on stdout, then it
#: serves until its stdin closes.
_TLS_NODE = """
import ssl, sys
from rollout import Rollout
cert, key, secret = sys.argv[1:]
server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server.load_cert_chain(cert, key)
server.verify_mode = ssl.CERT_REQUIRED
server.load_verify_locations(cafile=cert)
with Rollout(listen="127.0.0.1:0", secret=secret, ssl=server) as node:
    print(node.stats()["sync"]["address"], flush=True)
    sys.stdin.read()
"""


def test_a_tls_peer_whose_client_hello_waits_for_a_busy_node_is_admitted(
    certificate: tuple[Path, Path],
) -> None:
    # A node held up (a loaded machine, a pause) finds a new connection and its TLS ClientHello
    # waiting together. The hello must reach TLS, not the plain stream the connection starts as:
    # else TLS waits for bytes already taken, and the peer is closed at handshake_timeout, and
    # so again on every retry that finds the node as busy (the mTLS test under CPU load).
    cert, key = certificate
    node = subprocess.Popen(
        [sys.executable, "-c", _TLS_NODE, str(cert), str(key), SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        address = node.stdout.readline().strip()
        client = ssl.create_default_context(cafile=str(cert))
        client.load_cert_chain(cert, key)
        os.kill(node.pid, signal.SIGSTOP)
        os.waitpid(node.pid, os.WUNTRACED)  # stopped: it accepts and reads nothing now
        with (
            socket.create_connection(_split(address), timeout=WAIT) as raw,
            client.wrap_socket(
                raw, server_hostname="127.0.0.1", do_handshake_on_connect=False
            ) as tls,
        ):
            tls.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()  # the ClientHello is sent; the answer waits for the node
            os.kill(node.pid, signal.SIGCONT)
            tls.settimeout(WAIT)
            tls.do_handshake()  # the node answers: it did not lose the hello
            session = wire.dial(tls, SECRET.encode())
            assert session.their_hello["addr"] == address
    finally:
        node.kill()
        node.communicate(timeout=WAIT)


# A stuck peer and callbacks on the replication thread -------------------------------------------


def test_a_peer_that_stops_reading_is_dropped_and_blocks_no_write(tmp_path: Path) -> None:
    a = Rollout(transport=peer_transport(send_buffer_limit=1024 * 1024, stall_timeout=1.0))
    # The healthy peer is its own process, reading while `a` writes, as in production.
    healthy = Node("healthy", tmp_path, peers=[address_of(a)], secret=SECRET,
                   anti_entropy_interval=FAST).start()  # fmt: skip
    try:
        with socket.socket() as stuck:
            # A real peer (it knows the secret) that then never reads a byte: a frozen process.
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(_split(address_of(a)))
            _handshake(stuck, SECRET.encode())
            eventually(lambda: a.stats()["sync"]["peers_connected"] == 2)
            payload = "x" * 4000
            for i in range(2000):  # ~8 MB of deltas: far beyond every buffer on the way
                a.set_feature_data("big", {f"k{i}": payload})
            eventually(lambda: a.stats()["sync"]["slow_peers_dropped"] >= 1)
            eventually(lambda: len(healthy.call("get", "big")["data"]) == 2000)
            eventually(lambda: a.stats()["sync"]["peers_connected"] == 1)  # the stuck one left
    finally:
        healthy.stop()
        a.close()


def test_callbacks_on_the_replication_thread_may_check_and_write() -> None:
    a = Rollout(transport=peer_transport())
    b = Rollout(transport=peer_transport(peers=[address_of(a)]))
    seen: list[bool] = []

    def answer(changed: set[str]) -> None:
        # Runs on b's replication thread, after a merge: no lock that these need is held.
        if "ping" in changed:
            seen.append(b.active("ping"))
            b.activate("pong")

    b.subscribe(answer)
    try:
        assert b.wait_synced(WAIT)
        a.activate("ping")
        eventually(lambda: a.active("pong"))
        assert seen == [True]
    finally:
        a.close()
        b.close()


def test_close_from_a_callback_on_the_replication_thread_does_not_hang() -> None:
    def sync_threads() -> int:
        return len([t for t in threading.enumerate() if t.name == "rollout-sync"])

    before = sync_threads()
    a = Rollout(transport=peer_transport())
    b = Rollout(transport=peer_transport(peers=[address_of(a)]))
    closed = threading.Event()

    def leave(changed: set[str]) -> None:
        b.close()  # on b's own replication thread: it cannot wait for itself
        closed.set()

    b.subscribe(leave)
    try:
        a.activate("x")
        assert closed.wait(WAIT)
        eventually(lambda: a.stats()["sync"]["peers_connected"] == 0)
        eventually(lambda: sync_threads() == before + 1)  # b's thread ended; a's runs
    finally:
        a.close()


def test_a_healthy_peer_catching_up_a_flag_bigger_than_the_buffer_limit_is_kept(
    tmp_path: Path,
) -> None:
    a = Rollout(transport=peer_transport(send_buffer_limit=256 * 1024, stall_timeout=5.0))
    try:
        payload = "x" * 4000
        a.set_feature_data("big", {f"k{i}": payload for i in range(2000)})  # one ~8 MB flag
        # Joins afterwards: its catch-up is one state frame 30 times the buffer limit.
        late = Node("late", tmp_path, peers=[address_of(a)], secret=SECRET,
                    anti_entropy_interval=FAST).start()  # fmt: skip
        try:
            eventually(lambda: len(late.call("get", "big")["data"]) == 2000)
            assert a.stats()["sync"]["slow_peers_dropped"] == 0
        finally:
            late.stop()
    finally:
        a.close()
