"""Peer-to-peer replication over TCP: no Redis or other server to run (the Elixir design).

Every node keeps a full replica and a connection to every other node (full mesh). A local write
is sent at once to every connected peer; every second (with jitter) each node compares per-flag
digests with one random peer and pulls what differs, so lost messages, partitions and restarts
heal by themselves. Everything runs on one background thread with its own asyncio loop, except
that a local write's delta is sent by the writing thread itself (rollout.peer._sender).

The transport owns a :class:`~rollout.peer._mesh.Mesh` (the members and connections) and is
the owner every connection reports to (:class:`~rollout.peer._connection.ConnectionOwner`);
it reaches its replica only through :class:`~rollout.sync.SyncHost`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as ssl_module
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from .._core.state import Delta
from ..errors import ClosedError
from ..sync._base import SyncHost, Transport
from ..sync._clock import ClockJudge, OffsetSample, agrees
from ._admission import HandshakeGate, StrangerLog, is_loopback
from ._connection import PeerConnection
from ._frames import DEFAULT_MAX_FRAME, FrameAuthError, FrameError, Kind, encode_body
from ._handshake import transport_key
from ._loop import LoopThread, abandon, close_server, release_inherited_socket, start_server
from ._membership import parse_address
from ._mesh import Mesh
from ._secret import check_secret

__all__ = ["PeerTransport"]

logger = logging.getLogger("rollout.sync")

_COUNTERS = (
    "deltas_sent",
    "deltas_received",
    "digests_sent",
    "digests_compared",
    "states_sent",
    "states_received",
    "frames_rejected_auth",
    "frames_rejected_format",
    "slow_peers_dropped",
    "connections_opened",
    "handshakes_failed",
    "handshakes_refused",
    "handshakes_evicted",
)


class PeerTransport(Transport):
    """Replicate with peers over TCP. See ``Rollout(listen=..., peers=..., secret=...)``."""

    def __init__(
        self,
        *,
        listen: str | None = None,
        peers: Iterable[str] = (),
        secret: str | bytes | None = None,
        insecure: bool = False,
        ssl: ssl_module.SSLContext | None = None,
        client_ssl: ssl_module.SSLContext | None = None,
        member_timeout: float = 60.0,
        anti_entropy_interval: float = 1.0,
        learn_members: bool = True,
        max_frame: int = DEFAULT_MAX_FRAME,
        send_buffer_limit: int = 32 * 1024 * 1024,
        stall_timeout: float = 10.0,
        handshake_timeout: float = 3.0,
        max_handshakes: int = 64,
        max_handshakes_per_address: int = 32,
    ) -> None:
        if isinstance(peers, str):
            raise TypeError(f"peers must be a list of 'host:port' strings, got {peers!r}")
        self._seeds = list(dict.fromkeys(peers))
        for address in self._seeds:
            parse_address(address, "peers item")
        self._listen = parse_address(listen, "listen") if listen is not None else None
        secret = check_secret(secret)
        if self._listen and secret is None and not insecure and not is_loopback(self._listen[0]):
            raise ValueError(
                f"listen={listen!r} is not a loopback address and no secret is set: anyone who "
                "can reach it could change every flag. Pass secret=..., or insecure=True."
            )
        for name, value in (
            ("member_timeout", member_timeout),
            ("anti_entropy_interval", anti_entropy_interval),
            ("stall_timeout", stall_timeout),
            ("handshake_timeout", handshake_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        #: HKDF-Extract of the secret: the raw secret is not kept, and never keys a MAC.
        self.handshake_key: bytes | None = None if secret is None else transport_key(secret)
        self.handshake_timeout = handshake_timeout
        self.nonces_in_flight: dict[bytes, bool] = {}
        self._gate_limits = (max_handshakes, max_handshakes_per_address)
        self.server_ssl, self._client_ssl = ssl, client_ssl
        self._member_timeout = member_timeout
        self._interval = anti_entropy_interval
        self._learn = learn_members
        self.max_frame = max_frame
        self.send_buffer_limit = send_buffer_limit
        self.stall_timeout = stall_timeout
        self._reset()

    def _reset(self) -> None:
        self.host: SyncHost = _NoHost()
        self.advertised_address: str | None = None
        self.sequence = 0
        self._sequence_lock = threading.Lock()
        self._synced = threading.Condition()
        self._loop: LoopThread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # ours: cancelled on close
        self._mesh = Mesh(
            self,
            seeds=self._seeds,
            member_timeout=self._member_timeout,
            learn=self._learn,
            client_ssl=self._client_ssl,
            gate=HandshakeGate(total=self._gate_limits[0], per_address=self._gate_limits[1]),
        )
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._strangers = StrangerLog(logger)
        # Replaced at start(), when the host's max_offset is known.
        self._clock = ClockJudge(0, needs_confirmation=bool(self._seeds))
        #: Per admitted connection's node: its clock minus ours (ms), from its latest digest. (A
        #: hello's clock comes before the connection is admitted, unproven: it is not kept.)
        self._offsets: dict[int, OffsetSample] = {}
        self._closing = False

    @property
    def node_id(self) -> int:
        return self.host.node_id

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def awaits_clock_confirmation(self) -> bool:
        return bool(self._seeds)

    # Lifecycle ----------------------------------------------------------------------------------

    def start(self, host: SyncHost) -> None:
        if self._closing:  # its tasks would never start again (spawn): refused, not half-run
            raise ClosedError("this PeerTransport was closed: a transport starts once")
        self.host = host
        # Judged before the loop runs: a node with peers refuses writes from the first moment
        # until a peer confirms its clock.
        self._clock = ClockJudge(host.max_offset_ms, needs_confirmation=bool(self._seeds))
        self._check_clock()
        self._loop = LoopThread("rollout-sync")
        self._loop.submit(self._start()).result(timeout=10)

    async def _start(self) -> None:
        if self._listen is not None:
            host, port = self._listen
            # Plain TCP here even with TLS: the TLS handshake runs inside ours (PeerConnection),
            # after the connection took a handshake slot and under its time-out. asyncio's own
            # TLS server would allocate 256 KiB per accepted stranger before any cap applied.
            tls = self.server_ssl is not None  # then nothing is read before TLS begins
            self._server = await start_server(self._mesh.accept, host, port, tls=tls)
            bound = self._server.sockets[0].getsockname()
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            self.advertised_address = f"{shown}:{bound[1]}"
            logger.info("node %016x listening on %s", self.node_id, self.advertised_address)
        self._mesh.dial_members()
        self.spawn(self._anti_entropy())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closing:  # nothing new starts while the transport shuts down
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self, timeout: float = 5.0) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        self._closing = True
        if loop.is_current:
            # Called from a callback on the replication thread itself: it cannot wait for its
            # own loop, so the shutdown is scheduled and runs as soon as the callback returns.
            loop.loop.create_task(self._stop()).add_done_callback(lambda _: loop.loop.stop())
            return
        try:
            loop.submit(self._stop()).result(timeout=timeout)
        except Exception as exc:  # a wedged loop must not wedge close()
            logger.warning("replication did not stop cleanly: %r", exc)
        loop.stop(timeout)
        with self._synced:
            self._synced.notify_all()

    async def _stop(self) -> None:
        self._mesh.leave()
        if self._server is not None:
            await close_server(self._server)
        # Until none is left: a task may be mid-way through starting another when cancelled.
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._mesh.close_stragglers()

    def after_fork_in_child(self) -> None:
        """The parent's thread does not exist here; its sockets are the parent's to use."""
        old = self._loop
        if old is None:
            return
        abandon(old)
        for connection in self._mesh.connections.values():
            release_inherited_socket(connection.writer.get_extra_info("socket"))
            if connection.sender.socket is not None:
                release_inherited_socket(connection.sender.socket)
        if self._server is not None:
            for sock in self._server.sockets:
                release_inherited_socket(sock)
        host, listen = self.host, self._listen
        if listen is not None:
            self._listen = (listen[0], 0)  # the parent keeps its port; a child takes a fresh one
        self._reset()
        self.start(host)

    # Replication --------------------------------------------------------------------------------

    def publish(self, delta: Delta) -> None:
        loop = self._loop
        if loop is None:
            return
        with self._sequence_lock:
            self.sequence += 1
            body = encode_body(Kind.DELTA, {"seq": self.sequence}, delta)
            # Sent from this thread (rollout.peer._sender), in the order of the sequence: the
            # loop thread is not woken on the way. A connection admitted after this snapshot
            # gets the change from its first digest exchange (the replica holds it already).
            for connection in list(self._mesh.connections.values()):
                connection.sender.send_now(body)
                self._counters["deltas_sent"] += 1

    async def _anti_entropy(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._interval * random.uniform(0.5, 1.5))
            connections = list(self._mesh.connections.values())
            if connections:
                chosen = random.choice(connections)
                chosen.send_digest()
                self._mesh.gossip_to(chosen)
            for connection in connections:
                connection.check_stalled()
            self._check_clock()
            self.host.check_clock_step()

    def _check_clock(self) -> None:
        """Judge this node's clock by its connected peers' (rollout.sync._clock)."""
        members = self._mesh.members.by_address.values()
        # A configured peer that turned out to be this node itself (one list of every node
        # given to all of them) cannot confirm anything: alone with itself, it writes.
        self._clock.needs_confirmation = any(m.seed and m.state != "self" for m in members)
        connections = self._mesh.connections
        for node in [n for n in self._offsets if n not in connections]:
            del self._offsets[node]  # gone: it no longer votes
        now_ms = self.host.physical_ms()
        offsets = {
            _label(connections[node]): sample.now(now_ms) for node, sample in self._offsets.items()
        }
        verdict = self._clock.update(offsets, self.host.max_offset_ms)
        self.host.set_clock_skew(verdict.problem)

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        target = self.sequence
        loop = self._loop
        if loop is not None:
            loop.call_soon(self._request_acks, target)
        deadline = time.monotonic() + timeout
        refusals = self._refusals()
        with self._synced:
            while not self._is_synced(target, peers):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._loop is None:
                    return False
                if self._refusals() > refusals and self._refused(target):
                    return False  # refused since this call: waiting will not deliver them
                self._synced.wait(min(remaining, 0.1))
        return True

    def _request_acks(self, target: int) -> None:
        # A digest exchange ends with the peer acknowledging our sequence number as of now:
        # proof that it holds every write up to `target`, even if a delta was lost on the way.
        for connection in list(self._mesh.connections.values()):
            if connection.acked < target or connection.refused_at >= target:
                connection.send_digest()

    def _refused(self, target: int) -> bool:
        """A peer answered an exchange covering ``target`` with registers refused: they will
        not get there by waiting (they stay refused until an operator resolves them)."""
        return any(c.refused_at >= target for c in list(self._mesh.connections.values()))

    def _refusals(self) -> int:
        return sum(c.refusals for c in list(self._mesh.connections.values()))

    def _is_synced(self, target: int, peers: int | None) -> bool:
        if self._clock.verdict.state == "unconfirmed":
            # Not until a peer has judged this clock: then `wait_synced()` right after start
            # means local writes are no longer refused for want of a confirmed clock.
            return False
        mesh = self._mesh
        connections = list(mesh.connections.values())
        done = sum(
            1 for c in connections if c.synced and c.acked >= target and c.refused_at < target
        )
        if peers is not None:
            return done >= peers
        known: set[int | str] = {
            m.node if m.node is not None else m.address
            for m in list(mesh.members.by_address.values())
            # Not an address a peer told of that never answered: it may be nobody's.
            if m.state != "self" and (m.seed or m.ever_connected)
        }
        known.update(c.node for c in connections if c.node is not None)
        return done >= len(known)

    # What connections ask of their owner (ConnectionOwner); on the loop thread -------------------

    def member_addresses(self) -> list[str]:
        return self._mesh.member_addresses()

    def opened(self, connection: PeerConnection) -> None:
        self._mesh.opened(connection)

    def handshake_ended(self, connection: PeerConnection, error: BaseException | None) -> None:
        self._mesh.handshake_ended(connection)
        if error is not None and not isinstance(error, asyncio.CancelledError):  # not a shutdown
            self._counters["handshakes_failed"] += 1
            logger.debug("handshake with %s failed: %r", connection, error)

    def register(self, connection: PeerConnection) -> bool:
        return self._mesh.register(connection)

    def unregister(self, connection: PeerConnection) -> None:
        self._mesh.unregister(connection)
        with self._synced:
            self._synced.notify_all()

    def closed(self, connection: PeerConnection) -> None:
        self._mesh.closed(connection)

    def heard_hello(self, connection: PeerConnection, hello: dict[str, Any]) -> None:
        self.heard_clock(connection, hello["clock"])
        self._mesh.heard_hello(connection, hello)

    def heard_members(self, addresses: list[str]) -> None:
        self._mesh.heard_members(addresses)

    def heard_clock(self, connection: PeerConnection, their_ms: int) -> None:
        # Their clock when they sent it against ours now: the one-way delay is in the offset.
        sample = OffsetSample.taken(their_ms, self.host.physical_ms())
        if connection.member is not None:
            connection.member.offset_ms = sample.offset_ms
        # Only nodes that listen vote: a client that dials in and never listens (a `rollout
        # --peers` command, a script) is not a member of the cluster, and a few of them on a
        # machine with a bad clock must not outvote its healthy members.
        if connection.node is not None and connection.advertised is not None:
            self._offsets[connection.node] = sample
        self._check_clock()

    def acknowledged(self) -> None:
        with self._synced:
            self._synced.notify_all()

    def count(self, counter: str) -> None:
        self._counters[counter] += 1

    def reject_frame(self, connection: PeerConnection, error: FrameError) -> None:
        auth = isinstance(error, FrameAuthError)
        self._counters["frames_rejected_auth" if auth else "frames_rejected_format"] += 1
        if connection.outbound or connection.node is not None:
            # A member this node dialled, or a peer past its hello: the operator's business.
            logger.warning("closing connection to %s: %s", connection, error)
            return
        self._strangers.refused(connection.peer_label, error)

    # What the application sees ------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        loop = self._loop
        if loop is None:
            return []
        future = asyncio.run_coroutine_threadsafe(self._describe_members(), loop.loop)
        return future.result(timeout=5)

    async def _describe_members(self) -> list[dict[str, Any]]:
        # Run on the loop thread, which owns the member table.
        described = self._mesh.describe()
        limit = self.host.max_offset_ms
        for member in described:
            node = int(member["node"], 16) if member["node"] is not None else None
            sample = self._offsets.get(node) if node is not None else None
            offset = sample.now(self.host.physical_ms()) if sample is not None else None
            connected = member["state"] == "connected" and offset is not None
            if connected:
                member["clock_offset_ms"] = offset
            member["clock_agrees"] = (
                agrees(offset, limit) if connected and offset is not None else None
            )
        return described

    def stats(self) -> dict[str, Any]:
        mesh = self._mesh
        members = list(mesh.members.by_address.values())  # a copy: the loop thread owns it
        return {
            "transport": "peer",
            "address": self.advertised_address,
            "peers_connected": len(mesh.connections),
            "members": len([m for m in members if m.state != "self"]),
            "clock_skew": self._clock.verdict.problem,
            "clock": self._clock.verdict.describe(),
            "last_sync": {m.address: m.last_sync for m in members if m.state != "self"},
            **self._counters,
        }


def _label(connection: PeerConnection) -> str:
    """How a peer is named in clock verdicts: its address when it has one."""
    if connection.member is not None:
        return connection.member.address
    return connection.advertised or connection.peer_label


class _NoHost:
    """Stands in until start(): using it is a programming error."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("PeerTransport.start() has not been called")
