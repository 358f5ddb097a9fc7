"""The handshake under attack, against real node processes over real sockets.

A recorded handshake replayed on a fresh connection, a stranger who connects and listens, an
impostor a node dials (reflecting its opening, reflecting its proof), and a thousand stalled and
a thousand garbage connections with the node's memory measured while the cluster keeps working.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout.testing import eventually
from rollout.testing.cluster import Cluster, Node, NodeError, free_port

from . import wire
from .nodes import split, sync_stats, vm_rss_kib

FAST = 0.2
WAIT = 20.0


def connected_nodes(node: Node) -> set[str]:
    return {m["node"] for m in node.call("members") if m["state"] == "connected"}


def listen_until_closed(sock: socket.socket, timeout: float = WAIT) -> tuple[bytes, bool]:
    """What the node sends until it closes the connection, and whether it did close it."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionError:
        pass
    return received, True


class Recorder:
    """A TCP relay to ``target`` that records, per connection, what the dialler sent."""

    def __init__(self, target: str) -> None:
        self.target = split(target)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.recorded: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                self._sockets.append(client)
                upstream = socket.create_connection(self.target)
                self._sockets.append(upstream)
                record = bytearray()
                self.recorded.append(record)
                threading.Thread(target=self._pump, args=(client, upstream, record)).start()
                threading.Thread(target=self._pump, args=(upstream, client, None)).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record is not None:
                    record += data
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def nodes(*started: Node) -> Iterator[None]:
    try:
        yield
    finally:
        for node in started:
            node.stop()


def test_a_recorded_handshake_replayed_on_a_fresh_connection_is_refused(tmp_path: Path) -> None:
    # n1 reaches n0 only through the recorder, n2 reaches n0 directly; nobody learns members, so
    # these are the only links.
    n0 = Node("n0", tmp_path, learn_members=False, anti_entropy_interval=FAST).start()
    recorder = Recorder(n0.address)
    n1 = Node("n1", tmp_path, peers=[recorder.address], learn_members=False,
              anti_entropy_interval=FAST)  # fmt: skip
    n2 = Node("n2", tmp_path, peers=[n0.address], learn_members=False, anti_entropy_interval=FAST)
    with nodes(n0, n1, n2):
        n1.start()
        n2.start()
        eventually(lambda: sync_stats(n0)["peers_connected"] == 2, timeout=WAIT)
        n1.call("activate", "before")
        eventually(lambda: n0.call("active", "before"), timeout=WAIT)
        # Everything n1 sent on its connection: opening, proof, HELLO, digests, a delta.
        recording = bytes(recorder.recorded[0])
        assert len(recording) > wire.OPENING_SIZE + 32
        members = {node.name: connected_nodes(node) for node in (n0, n2)}
        rejected = {node.name: sync_stats(node)["frames_rejected_auth"] for node in (n0, n2)}
        held: list[socket.socket] = []
        try:
            for target in (n0, n2):  # the node it was recorded from, and another
                for replay in (recording[: wire.OPENING_SIZE + 32], recording):
                    sock = socket.create_connection(split(target.address), timeout=WAIT)
                    held.append(sock)  # held open, as an attacker would
                    sock.sendall(replay[: wire.OPENING_SIZE])
                    # The node answers any opening with its own, with a fresh nonce ...
                    assert wire.recv_exactly(sock, wire.OPENING_SIZE).startswith(wire.MAGIC)
                    with contextlib.suppress(ConnectionError):
                        sock.sendall(replay[wire.OPENING_SIZE :])
                    # ... so the recorded proof is wrong here: closed, and not a byte more.
                    assert listen_until_closed(sock) == (b"", True)
            for target in (n0, n2):
                assert sync_stats(target)["frames_rejected_auth"] >= rejected[target.name] + 2
                assert connected_nodes(target) == members[target.name]  # nobody new listed
            # The real n1 is still connected to n0 and still replicates.
            n1.call("activate", "after")
            eventually(lambda: n0.call("active", "after"), timeout=WAIT)
            eventually(lambda: n2.call("active", "after"), timeout=WAIT)
            assert sync_stats(n0)["peers_connected"] == 2
        finally:
            for sock in held:
                sock.close()
            n1.stop()  # before the recorder, so it dials it no more
            recorder.close()


def test_a_stranger_learns_nothing_but_a_random_opening(tmp_path: Path) -> None:
    with Cluster(2, tmp_path, anti_entropy_interval=FAST) as cluster:
        target = cluster[0]
        cluster.wait_until(lambda node: node.call("stats")["sync"]["peers_connected"] == 1)
        target.call("activate", "private-flag")
        failed = sync_stats(target)["handshakes_failed"]
        # Silent: the node waits for an opening, says nothing, and closes at its time-out.
        with socket.create_connection(split(target.address), timeout=WAIT) as silent:
            assert listen_until_closed(silent) == (b"", True)
        # An opening that claims a secret: the node's opening (magic, mode, 32 random bytes),
        # then nothing, then the time-out; no MAC to test guesses of the secret against.
        answers = []
        for _ in range(2):
            with socket.create_connection(split(target.address), timeout=WAIT) as stranger:
                stranger.sendall(wire.opening(os.urandom(32)))
                answer, closed = listen_until_closed(stranger)
                assert closed
                assert len(answer) == wire.OPENING_SIZE
                assert answer[: len(wire.MAGIC) + 1] == wire.MAGIC + b"\x01"
                answers.append(answer)
        assert answers[0] != answers[1]  # fresh nonces
        node_id = target.node_id
        assert node_id is not None
        for secret_of_the_node in (node_id, str(split(target.address)[1]), cluster[1].address):
            assert secret_of_the_node.encode() not in b"".join(answers)
        eventually(lambda: sync_stats(target)["handshakes_failed"] >= failed + 3)


def test_a_node_that_dials_an_impostor_proves_nothing_and_says_nothing(tmp_path: Path) -> None:
    impostor = socket.create_server(("127.0.0.1", free_port()))
    address = f"127.0.0.1:{impostor.getsockname()[1]}"
    node = Node("n", tmp_path, peers=[address], anti_entropy_interval=FAST).start()
    impostor.settimeout(WAIT)
    with nodes(node), impostor:
        with pytest.raises(NodeError, match="not confirmed"):  # no peer confirmed its clock
            node.call("activate", "private-flag")
        # 1. Its own opening sent back to it: its own nonce.
        sock, _ = impostor.accept()
        with sock:
            theirs = wire.recv_exactly(sock, wire.OPENING_SIZE)
            sock.sendall(theirs)
            assert listen_until_closed(sock) == (b"", True)
        # 2. A fresh opening, then the node's own proof sent back as ours.
        sock, _ = impostor.accept()
        with sock:
            wire.recv_exactly(sock, wire.OPENING_SIZE)
            sock.sendall(wire.opening(os.urandom(32)))
            their_proof = wire.recv_exactly(sock, 32)
            sock.sendall(their_proof)
            assert listen_until_closed(sock) == (b"", True)  # no HELLO, nothing
        eventually(lambda: sync_stats(node)["frames_rejected_auth"] >= 2)
        assert sync_stats(node)["peers_connected"] == 0


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2500:
        pytest.skip(f"the open-file hard limit ({hard}) is too low for 1,000 connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _still_replicating(cluster: Cluster, flag: str) -> None:
    target, writer = cluster[0], cluster[1]
    writer.call("activate", flag)
    eventually(lambda: target.call("active", flag), what=f"{flag} reaches the target", timeout=WAIT)
    assert target.call("active", "never-written") is False  # checks answer


@pytest.mark.usefixtures("many_files")
def test_a_thousand_stalled_and_a_thousand_garbage_connections(tmp_path: Path) -> None:
    with Cluster(3, tmp_path, anti_entropy_interval=FAST) as cluster:
        target = cluster[0]
        cluster.wait_until(lambda node: sync_stats(node)["peers_connected"] == 2)
        cluster[1].call("activate", "warm-up")
        cluster.wait_converged()
        assert target.process is not None
        pid = target.process.pid
        before = vm_rss_kib(pid)
        peak = before
        host, port = split(target.address)
        stalled: list[socket.socket] = []
        try:
            # 1,000 strangers from 50 source addresses (over the per-address and the total
            # cap), each stopping part-way: silent, half an opening, an opening and no proof.
            for i in range(1000):
                sock = socket.socket()
                sock.bind((f"127.0.1.{1 + i % 50}", 0))
                sock.settimeout(WAIT)
                with contextlib.suppress(ConnectionError):
                    sock.connect((host, port))
                    sock.sendall(
                        (b"", wire.opening(os.urandom(32))[:20], wire.opening(b"x" * 32))[i % 3]
                    )
                stalled.append(sock)
                if i % 100 == 99:
                    peak = max(peak, vm_rss_kib(pid))
            _still_replicating(cluster, "during-stall")
            peak = max(peak, vm_rss_kib(pid))
        finally:
            for sock in stalled:
                sock.close()
        # 1,000 connections of garbage: random bytes, oversized lengths, an opening and 64 KiB.
        junk = [
            os.urandom(4096),
            (2**32 - 1).to_bytes(4, "big") + os.urandom(1024),
            wire.opening(os.urandom(32)) + os.urandom(65536),
        ]
        for i in range(1000):
            with socket.socket() as sock:
                sock.settimeout(WAIT)
                with contextlib.suppress(ConnectionError):
                    sock.connect((host, port))
                    sock.sendall(junk[i % 3])
            if i % 100 == 99:
                peak = max(peak, vm_rss_kib(pid))
        _still_replicating(cluster, "after-garbage")
        peak = max(peak, vm_rss_kib(pid))
        stats = sync_stats(target)
        assert stats["handshakes_refused"] > 0  # the caps did close some at once
        assert stats["handshakes_failed"] > 0
        assert stats["peers_connected"] == 2
        growth_mib = (peak - before) / 1024
        print(
            f"target RSS: {before / 1024:.1f} MiB before, peak growth {growth_mib:.1f} MiB; "
            f"handshakes refused {stats['handshakes_refused']}, "
            f"failed {stats['handshakes_failed']}"
        )
        assert growth_mib < 20, f"RSS grew by {growth_mib:.1f} MiB"
