"""A local write's delta leaves from the thread that wrote it (rollout.peer._sender).

In-process replicas over loopback TCP, and a raw peer (tests/peer/wire.py) that checks every
frame it reads against the protocol's description: MACs over consecutive counters, deltas in
the order of their sequence numbers.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
from collections.abc import Iterator

import pytest

from rollout import Rollout
from rollout.peer import PeerTransport
from rollout.peer._frames import FrameWriter, Kind, encode_body
from rollout.peer._sender import FrameSender
from rollout.testing import eventually

from . import wire
from .nodes import split

SECRET = secrets.token_urlsafe(32)
WAIT = 20.0  # upper bound on every liveness wait; the happy path never gets near it
SLOW = 3600.0  # anti-entropy interval: no digest exchange can deliver what a test sends


def peer_transport(peers: list[str] | None = None, *, learn_members: bool = True) -> PeerTransport:
    return PeerTransport(
        listen="127.0.0.1:0",
        peers=peers or [],
        secret=SECRET,
        anti_entropy_interval=SLOW,
        learn_members=learn_members,
    )


def address_of(flags: Rollout) -> str:
    address: str = flags.stats()["sync"]["address"]
    return address


@pytest.fixture
def pair() -> Iterator[tuple[Rollout, Rollout]]:
    """Two connected replicas whose anti-entropy never runs during a test, over one connection:
    ``a`` learns no addresses, so it never dials ``b`` back (a second connection, one of the two
    then dropped, would move the counters the tests read, whenever its handshake ended)."""
    with (
        Rollout(transport=peer_transport(learn_members=False)) as a,
        Rollout(transport=peer_transport([address_of(a)])) as b,
    ):
        assert b.wait_synced(WAIT)
        assert a.wait_synced(WAIT)
        for replica in (a, b):
            sync = replica.stats()["sync"]
            assert (sync["peers_connected"], sync["connections_opened"]) == (1, 1)
        yield a, b


def test_a_write_reaches_peers_while_the_replication_thread_is_busy(
    pair: tuple[Rollout, Rollout],
) -> None:
    # A subscriber runs on the replication thread for a peer's change; a slow one (a reload, a
    # lock) used to hold back every local write of the node to its peers until it returned.
    a, b = pair
    release = threading.Event()
    entered = threading.Event()

    def slow(names: set[str]) -> None:
        if "slow" in names and threading.current_thread().name == "rollout-sync":
            entered.set()
            release.wait(3 * WAIT)  # released by the test, which gives up long before

    a.subscribe(slow)
    try:
        b.activate("slow")
        assert entered.wait(WAIT), "a's replication thread never ran the subscriber"
        a.activate("fast")  # a's replication thread is still in the subscriber
        eventually(lambda: b.active("fast"), timeout=WAIT, what="b sees a's write")
    finally:
        release.set()
    assert a.wait_synced(WAIT)


def test_writes_from_many_threads_arrive_whole_and_authenticated(
    pair: tuple[Rollout, Rollout],
) -> None:
    # Writing threads and the replication thread (the digests of wait_synced) send on one
    # connection at once: every frame must keep its MAC's counter and its place.
    a, b = pair
    opened = [r.stats()["sync"]["connections_opened"] for r in pair]

    def write(thread: int) -> None:
        for i in range(100):
            a.activate_user(f"t{thread}", i)
            if i % 25 == 0:
                a.wait_synced(WAIT)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert a.wait_synced(WAIT)
    for t in range(4):
        assert b.get(f"t{t}").users == {str(i) for i in range(100)}
    for replica, before in zip(pair, opened, strict=True):
        sync = replica.stats()["sync"]
        assert sync["frames_rejected_auth"] == sync["frames_rejected_format"] == 0
        assert sync["connections_opened"] == before  # never dropped and dialled again


def test_deltas_queue_in_order_behind_a_peer_that_reads_slowly() -> None:
    # The socket's buffers fill up: what it does not take waits, and goes out in order after
    # the bytes already queued, each frame with the next MAC counter.
    with Rollout(transport=peer_transport()) as node, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT)
        sock.connect(split(address_of(node)))
        session = wire.dial(sock, SECRET.encode())
        eventually(lambda: node.stats()["sync"]["peers_connected"] == 1, timeout=WAIT)
        users = [f"user-{i:05d}" for i in range(300)]

        def write(thread: int) -> None:
            for i in range(60):
                node.set_users(f"big{thread}-{i}", users)

        threads = [threading.Thread(target=write, args=(t,)) for t in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        sequences = list(_deltas(sock, session, count=120))
    assert sequences == list(range(1, 121))


def _deltas(sock: socket.socket, session: wire.Session, *, count: int) -> Iterator[int]:
    """The sequence numbers of the next ``count`` DELTA frames, every frame's MAC checked."""
    counter = session.received
    while count:
        length = int.from_bytes(wire.recv_exactly(sock, 4), "big")
        data = wire.recv_exactly(sock, length)
        body, mac = data[:-32], data[-32:]
        assert mac == wire.frame(session.receive_key, counter, body)[-32:], f"frame {counter}"
        counter += 1
        if body[1] == 2:  # DELTA
            count -= 1
            yield json.loads(body[2:])["seq"]


def test_a_delta_sent_just_as_its_connection_is_admitted_goes_out() -> None:
    # A writing thread can send between the connection's admission (it is among the peers)
    # and the moment the loop thread lets writing threads use its socket: that frame waits,
    # and goes out first with the loop thread's next frame (the initial digest, in a node).
    async def scenario() -> bytes:
        arrived: asyncio.Queue[bytes] = asyncio.Queue()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await arrived.put(await reader.readexactly(len(expected)))
            finally:
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        async with server:
            _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            sender = FrameSender(writer, lambda: None)
            await asyncio.to_thread(sender.send_now, delta)  # before open_direct
            sender.open_direct()
            sender.send(digest)
            try:
                return await asyncio.wait_for(arrived.get(), WAIT)
            finally:
                sender.close()
                writer.close()
                await writer.wait_closed()

    delta = encode_body(Kind.DELTA, {"seq": 1}, {})
    digest = encode_body(Kind.DIGEST, {"seq": 1, "clock": 0, "digests": {}})
    framed = FrameWriter()  # unkeyed, as the sender's: length, body
    expected = framed.frame_body(delta) + framed.frame_body(digest)
    assert asyncio.run(scenario()) == expected
