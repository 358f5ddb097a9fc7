"""One connection to a peer: the handshake, then deltas, digests, pulls, states and acks.

Handshake (:mod:`rollout.peer._handshake`): fixed-size openings with a fresh nonce from each
side, then, with a secret, a proof from the dialler and only then one from the other side; each
side describes itself (HELLO: node id, address, members, clock) only after the peer proved the
secret, in a frame MAC'd with the connection's own key for that direction. Then each side sends a
DIGEST of everything it holds; the answer
is the registers that differ (STATE) and a PULL for the ones it lacks; the final STATE is
acknowledged with the sequence number the DIGEST carried, which tells ``wait_synced`` that the
peer holds (in its store) everything written up to it. Deltas themselves are not acknowledged
(that would double the wake-ups of every write); ``wait_synced`` starts such an exchange with
every peer instead. So a delta, committed by its writer before it was sent, is applied and
announced before the receiver commits it (right after); a STATE is committed before either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any, Protocol

from .._core.state import Delta
from ..errors import RolloutError
from ._frames import (
    FrameError,
    FrameReader,
    Kind,
    Message,
    OwnOpeningError,
    encode_body,
)
from ._handshake import authenticate
from ._hello import hello_body, read_hello
from ._loop import start_tls
from ._receiving import receive
from ._sender import FrameSender

if TYPE_CHECKING:
    from ..sync._base import SyncHost
    from ._membership import Member

__all__ = ["ConnectionOwner", "PeerConnection"]

logger = logging.getLogger("rollout.sync")


class ConnectionOwner(Protocol):
    """What a connection may ask of its owner (the peer transport), on the owner's loop thread.

    The connection reaches its replica only through ``host``, and the rest of its node only
    through this: so it depends on neither the transport nor the mesh that opened it.
    """

    # Settings, fixed for the owner's lifetime.

    @property
    def handshake_key(self) -> bytes | None:
        """HKDF-Extract of the shared secret, which every connection's keys come from.

        None: no secret, so no proofs and no MACs (loopback, or ``insecure=True``).
        """
        ...

    @property
    def handshake_timeout(self) -> float: ...

    @property
    def server_ssl(self) -> ssl.SSLContext | None:
        """TLS for accepted connections (None: plain TCP), begun inside the handshake."""
        ...

    @property
    def nonces_in_flight(self) -> dict[bytes, bool]:
        """The nonces of every handshake of this node in progress (rollout.peer._handshake)."""
        ...

    @property
    def max_frame(self) -> int: ...

    @property
    def send_buffer_limit(self) -> int: ...

    @property
    def stall_timeout(self) -> float: ...

    # This node, as the hello and the digests describe it.

    @property
    def node_id(self) -> int: ...

    @property
    def advertised_address(self) -> str | None:
        """The address peers can dial this node at (None: it does not listen)."""
        ...

    @property
    def host(self) -> SyncHost:
        """The replica: its clock, digests and registers."""
        ...

    @property
    def sequence(self) -> int:
        """The number of the latest local write, which a DIGEST asks the peer to acknowledge."""
        ...

    def member_addresses(self) -> list[str]:
        """The members to tell a peer about in the hello (empty when not sharing them)."""
        ...

    # The connection's life: opened, then registered after its handshake, then closed.

    def opened(self, connection: PeerConnection) -> None: ...

    def handshake_ended(self, connection: PeerConnection, error: BaseException | None) -> None:
        """The handshake completed (``error`` None) or failed; the peer is not admitted yet."""
        ...

    def register(self, connection: PeerConnection) -> bool:
        """Admit a connection after its handshake; False if it must close (self, duplicate)."""
        ...

    def unregister(self, connection: PeerConnection) -> None: ...

    def closed(self, connection: PeerConnection) -> None: ...

    # What the connection heard.

    def heard_hello(self, connection: PeerConnection, hello: dict[str, Any]) -> None:
        """The peer's hello, checked against its schema (``connection.node`` is set now)."""
        ...

    def heard_clock(self, connection: PeerConnection, their_ms: int) -> None: ...

    def heard_members(self, addresses: list[str]) -> None:
        """The members a peer gossiped (a MEMBERS frame, checked against its schema)."""
        ...

    def acknowledged(self) -> None:
        """The peer acknowledged a sequence number: a ``wait_synced`` may be done."""
        ...

    def count(self, counter: str) -> None:
        """Add one to a counter of ``stats()``."""
        ...

    def reject_frame(self, connection: PeerConnection, error: FrameError) -> None:
        """The peer sent bad bytes; the connection closes right after."""
        ...


class PeerConnection:
    def __init__(
        self,
        owner: ConnectionOwner,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        member: Member | None = None,
    ) -> None:
        self.owner = owner
        self.reader, self.writer = reader, writer
        self.outbound = outbound
        self.member = member
        self.node: int | None = None
        self.advertised: str | None = None
        self.peer_label = _peer_label(writer, member)
        # Keyed once the handshake has derived this connection's keys.
        #: Every frame goes out through it; a writing thread sends its deltas with send_now.
        self.sender = FrameSender(writer, self.check_stalled)
        self._frames_in = FrameReader(max_frame=owner.max_frame)
        self.acked = -1  # the highest sequence number the peer acknowledged
        self.refused_at = -1  # the last sequence number it acknowledged with registers refused
        self.refusals = 0  # REFUSED messages received: wait_synced looks for new ones
        self._refusing: int | None = None  # the sequence number the last REFUSED was about
        self.sync_seq: int | None = None  # the sequence number our first DIGEST carried
        self.synced = False  # the peer holds our state as of sync_seq
        self.closed = False
        #: The handshake found this node's own opening (see Mesh._dial: itself, or a relay).
        self.reached_itself = False
        self.over_limit_since: float | None = None  # when the send buffer went over the limit

    @property
    def initiator(self) -> int:
        """The node that opened this connection (duplicate connections keep the smaller)."""
        assert self.node is not None
        return self.owner.node_id if self.outbound else self.node

    async def run(self) -> None:
        """Handshake, then serve messages until either side closes. Never raises."""
        registered = False
        self.owner.opened(self)
        try:
            try:
                await asyncio.wait_for(self._handshake(), self.owner.handshake_timeout)
            except BaseException as exc:
                self.owner.handshake_ended(self, exc)
                raise
            self.owner.handshake_ended(self, None)
            registered = self.owner.register(self)
            if not registered:
                return
            self.sender.open_direct()
            self.send_digest(initial=True)
            await receive(self.reader, self.writer, self._received)
        except FrameError as exc:
            self.reached_itself = isinstance(exc, OwnOpeningError)
            self.owner.reject_frame(self, exc)
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            logger.debug("connection to %s ended: %r", self.peer_label, exc)
        finally:
            self.close()
            if registered:
                self.owner.unregister(self)
            self.owner.closed(self)
            # Until the socket is really closed, so a shutdown never leaves one behind.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.writer.wait_closed(), timeout=1.0)

    async def _handshake(self) -> None:
        server_ssl = self.owner.server_ssl
        if server_ssl is not None and not self.outbound:
            await start_tls(self.writer, server_ssl)
        keys = await authenticate(
            self.reader,
            self.writer,
            self.owner.handshake_key,
            outbound=self.outbound,
            in_flight=self.owner.nonces_in_flight,
        )
        if keys is not None:
            self.sender.frames.rekey(keys[0])
            self._frames_in.rekey(keys[1])
        # The side that proved itself first hears first who it is talking to.
        if not self.outbound:
            self._send_hello()
        hello = await read_hello(self.reader, self._frames_in, self.owner.max_frame)
        if self.outbound:
            self._send_hello()
        self.node = int(hello["node"], 16)
        self.advertised = hello["addr"]
        self.owner.heard_hello(self, hello)

    def _send_hello(self) -> None:
        owner = self.owner
        members, clock = owner.member_addresses(), owner.host.physical_ms()
        self.send_body(hello_body(owner.node_id, owner.advertised_address, members, clock))

    # Sending ----------------------------------------------------------------------------------

    def _send(self, kind: Kind, body: dict[str, Any], delta: Delta | None = None) -> None:
        if not self.closed:
            self.sender.send(encode_body(kind, body, delta))

    def send_body(self, body: bytes) -> None:
        """Send an already-encoded body, on the loop thread."""
        if not self.closed:
            self.sender.send(body)

    def check_stalled(self) -> None:
        """Drop a peer that stopped reading; never one that is merely catching up.

        A burst of writes or one big catch-up frame can fill the buffer of a healthy peer, so
        the buffer being over ``send_buffer_limit`` only starts a clock: the peer is dropped if
        it stays over for ``stall_timeout`` seconds (checked on every write and every
        anti-entropy round), or at once past the hard cap of the limit plus one largest frame.
        It catches up by anti-entropy when it comes back.
        """
        if self.closed:
            return
        owner = self.owner
        buffered = self.sender.buffered
        if buffered <= owner.send_buffer_limit:
            self.over_limit_since = None
            return
        now = time.monotonic()
        if self.over_limit_since is None:
            self.over_limit_since = now
        stalled = now - self.over_limit_since > owner.stall_timeout
        if stalled or buffered > owner.send_buffer_limit + owner.max_frame:
            logger.warning("peer %s is not reading (%d bytes queued); dropping it", self, buffered)
            owner.count("slow_peers_dropped")
            self.abort()

    def send_digest(self, *, initial: bool = False) -> None:
        host = self.owner.host
        seq = self.owner.sequence
        if initial:
            self.sync_seq = seq
        digests = {name: digest.hex() for name, digest in host.digests().items()}
        self._send(Kind.DIGEST, {"seq": seq, "clock": host.physical_ms(), "digests": digests})
        self.owner.count("digests_sent")

    def send_members(self, addresses: list[str]) -> None:
        self._send(Kind.MEMBERS, {"members": addresses})

    # Receiving --------------------------------------------------------------------------------

    def _received(self, data: bytes) -> bool:
        """Handle the frames ``data`` completes; False once the connection is closed."""
        for message in self._frames_in.feed(data):
            self._handle(message)
            if self.closed:
                return False
        return True

    def _handle(self, message: Message) -> None:
        owner, body = self.owner, message.body
        kind = message.kind
        if kind is Kind.DELTA:
            # Not acknowledged: an ack per write would double the wake-ups of every process on
            # the hot path of propagation. wait_synced() asks for a digest exchange instead,
            # whose final ack covers every write up to its sequence number.
            owner.count("deltas_received")
            self._merge(message.delta, store_first=False)  # committed right after it is seen
        elif kind is Kind.DIGEST:
            owner.heard_clock(self, body["clock"])
            self._answer_digest(body)
        elif kind is Kind.PULL:
            names = body["names"]
            self._send(Kind.STATE, {"seq": body["seq"]}, owner.host.replicated(names))
            owner.count("states_sent")
        elif kind is Kind.STATE:
            owner.count("states_received")
            refused = self._merge(message.delta, store_first=True)  # stored before the ACK
            if refused is not None and body["seq"] is not None:
                if refused:
                    self._send(Kind.REFUSED, {"seq": body["seq"], "refused": refused})
                self._send(Kind.ACK, {"seq": body["seq"]})
        elif kind is Kind.REFUSED:
            # The peer holds our state as of seq except registers it refused (stamped too far
            # ahead of its clock): wait_synced must not call that delivered. The ACK follows.
            self._check_answered(body["seq"])
            self._refusing = body["seq"]
            self.refused_at = max(self.refused_at, body["seq"])
            self.refusals += 1
        elif kind is Kind.ACK:
            seq = body["seq"]
            self._check_answered(seq)
            self.acked = max(self.acked, seq)
            if self._refusing != seq and seq >= self.refused_at:
                self.refused_at = -1  # a clean exchange since: the peer holds all of it now
            self._refusing = None
            if seq == self.sync_seq:
                self.synced = True
            if self.member is not None:
                self.member.last_sync = time.time()
            owner.acknowledged()
        elif kind is Kind.BYE:
            self.close()
        elif kind is Kind.MEMBERS:
            owner.heard_members(body["members"])
        else:
            raise FrameError(f"unexpected {kind.name} after the handshake")

    def _check_answered(self, seq: int) -> None:
        """An ACK or REFUSED answers a digest this node sent, so it cannot name a sequence
        number this node has not reached: such a frame would make ``wait_synced`` report writes
        delivered (or refused) that were never sent."""
        if seq > (latest := self.owner.sequence):
            raise FrameError(f"an answer for sequence number {seq}, past this node's {latest}")

    def _answer_digest(self, body: dict[str, Any]) -> None:
        host = self.owner.host
        mine = host.digests()
        theirs = {name: bytes.fromhex(digest) for name, digest in body["digests"].items()}
        differ = {n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n)}
        self.owner.count("digests_compared")
        push = [name for name in differ if name in mine]
        if push:
            self._send(Kind.STATE, {"seq": None}, host.replicated(push))
            self.owner.count("states_sent")
        # Always answer, even with nothing to pull: the answer completes the peer's sync.
        self._send(
            Kind.PULL, {"seq": body["seq"], "names": sorted(n for n in differ if n in theirs)}
        )

    def _merge(self, delta: Delta | None, *, store_first: bool) -> int | None:
        """Merge a peer's registers: how many were refused (quarantined), or None (and no ack)
        if this replica could not store them (an empty STATE too: SyncHost.merge_from_peer)."""
        if not delta and not store_first:
            return 0
        try:
            return self.owner.host.merge_from_peer(delta or {}, store_first=store_first)
        except RolloutError as exc:
            # Not acknowledged: not delivered for the peer; anti-entropy offers it again.
            logger.warning("could not merge registers from %s: %s", self, exc)
            return None

    # Closing ----------------------------------------------------------------------------------

    def say_goodbye(self) -> None:
        self._send(Kind.BYE, {})
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sender.close()
            self.writer.close()

    def abort(self) -> None:
        self.closed = True
        self.sender.close()
        self.writer.transport.abort()

    def __str__(self) -> str:
        node = f"{self.node:016x}" if self.node is not None else "?"
        return f"{self.peer_label} (node {node})"


def _peer_label(writer: asyncio.StreamWriter, member: Member | None) -> str:
    if member is not None:
        return member.address
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
