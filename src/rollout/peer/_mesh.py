"""The mesh: which nodes a peer transport is connected to, and how it gets there.

Dialling members (with backoff, forgetting non-seeds after ``member_timeout``), accepting
connections, admitting them after the handshake (one connection per node pair), learning
members from hellos and from gossip, and ending every connection when the transport closes. A
component that :class:`~rollout.peer.PeerTransport` owns (made anew with the rest of its state in
a forked child); everything here runs on the transport's loop thread.

Gossip. A node tells its peers the addresses of the members it is *connected to* in a MEMBERS
frame: to every peer shortly after it admits a connection (so a node that joins through one seed
is dialled by everyone that seed is connected to, within a round trip), and to one random peer
every anti-entropy round (so a member forgotten during a partition is learned again once the
partition heals). A frame of its own rather than addresses piggy-backed on digests: a digest
goes to one peer a second, a join must reach all of them at once, and the hello may not carry
members for much longer (it is sent before the peer is authenticated). It is only ever sent
after the handshake, so only a peer that holds the secret can make a node dial somewhere.

Why only connected members: a node vouches only for what it reaches now. A member that is down
everywhere is therefore told to nobody, and once every node has forgotten it (``member_timeout``)
it stays forgotten; gossiping every remembered member would hand a dead node back and forth for
ever, each copy restarting the other's timeout. The member table is capped at ``MAX_MEMBERS``
entries, so a peer that gossips garbage cannot make a node dial without end.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Coroutine
from typing import Any, Protocol

from ._admission import HandshakeGate, source_key
from ._connection import ConnectionOwner, PeerConnection
from ._loop import open_connection
from ._membership import Member, Members, parse_address

__all__ = ["GOSSIP_DELAY", "Mesh", "MeshOwner"]

#: Retries (after the first try) for an address learned from a peer that never answered as a
#: node (Mesh._give_up): gossip from any peer connected to it teaches it again.
LEARNED_TRIES = 2
#: Learned addresses not yet proven (never connected) tried at once (Mesh._may_learn).
MAX_UNPROVEN = 32

logger = logging.getLogger("rollout.sync")

#: Seconds between admitting a connection and telling every peer: the connections of a node
#: that joins (or of many nodes starting at once) are announced in one frame per peer, not one
#: per connection.
GOSSIP_DELAY = 0.05


class MeshOwner(ConnectionOwner, Protocol):
    """What the mesh may ask of the transport that owns it.

    Everything a connection may (the mesh hands its owner to every connection it opens), plus
    running a task and whether the transport is shutting down.
    """

    @property
    def closing(self) -> bool:
        """The transport is shutting down: no dialling, and new connections are closed."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the transport cancels on close (or close it, if closing)."""
        ...


class Mesh:
    """The members and connections of one peer transport."""

    def __init__(
        self,
        owner: MeshOwner,
        *,
        seeds: list[str],
        member_timeout: float,
        learn: bool,
        client_ssl: ssl_module.SSLContext | None,
        gate: HandshakeGate[PeerConnection],
    ) -> None:
        self._owner = owner
        self._learn = learn
        self._member_timeout = member_timeout
        self._client_ssl = client_ssl
        self.members = Members(seeds, member_timeout)
        #: The admitted connection to each node, by node id.
        self.connections: dict[int, PeerConnection] = {}
        #: Every open connection, handshaking ones too, so close() can end them all.
        self._open: set[PeerConnection] = set()
        # The server's tasks for accepted connections: they end when their connection is
        # closed, and must not be cancelled (asyncio's stream server logs that as an error).
        self._handlers: set[asyncio.Task[None]] = set()
        self._reconnect: dict[int, asyncio.Event] = {}
        self._gate = gate
        #: Accepted connections still in their handshake, and the source address whose slot
        #: each holds.
        self._gated: dict[PeerConnection, str] = {}
        self._gossip_due = False  # a MEMBERS frame to every peer is scheduled

    def member_addresses(self) -> list[str]:
        """What this node tells peers about (hello and gossip): the members it is connected to."""
        return self.members.connected_addresses() if self._learn else []

    def describe(self) -> list[dict[str, Any]]:
        labels = {node: c.peer_label for node, c in self.connections.items()}
        return self.members.describe(labels)

    # Making connections -------------------------------------------------------------------------

    def dial_members(self) -> None:
        """Start dialling every member known so far (the seeds, when the transport starts)."""
        for member in list(self.members.by_address.values()):
            self._owner.spawn(self._dial(member))

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The server's callback for a connection a peer opened."""
        if self._owner.closing:  # accepted just as the transport shuts down: nobody will run it
            writer.close()
            return
        source = _source_address(writer)
        connection = PeerConnection(self._owner, reader, writer, outbound=False)
        admitted, evicted = self._gate.admit(source, connection)
        if not admitted:
            # A stranger over a cap costs nothing more: no task, no buffer, not a byte sent.
            self._owner.count("handshakes_refused")
            writer.transport.abort()
            return
        if evicted is not None:
            # It made room (the oldest handshake of the busiest address): ended at once.
            self._gated.pop(evicted, None)
            self._owner.count("handshakes_evicted")
            evicted.abort()
        task = asyncio.current_task()
        if task is not None:  # so close() can wait for it
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._gated[connection] = source
        try:
            await connection.run()
        finally:
            self.handshake_ended(connection)  # if run() ended before its handshake did

    async def _dial(self, member: Member) -> None:
        while not self._owner.closing and self.members.by_address.get(member.address) is member:
            if member.state == "self":
                return
            if member.node is not None and member.node in self.connections:
                event = self._reconnect.setdefault(member.node, asyncio.Event())
                await event.wait()
                continue
            try:
                host, port = parse_address(member.address)
                # asyncio.timeout, not wait_for: in 3.11 a wait_for cancelled just as the
                # connection completes drops the connected writer, and its socket leaks.
                async with asyncio.timeout(5.0):
                    reader, writer = await open_connection(
                        host,
                        port,
                        ssl=self._client_ssl,
                        server_hostname=host if self._client_ssl else None,
                    )
            except (OSError, TimeoutError, ssl_module.SSLError) as exc:
                self.members.mark_down(member)
                if self._give_up(member):
                    return
                if self.members.expired(member):
                    logger.info(
                        "forgetting %s: unreachable for %.0f s",
                        member.address,
                        self._member_timeout,
                    )
                    self.members.forget(member)
                    return
                logger.debug("cannot reach %s: %r", member.address, exc)
                await asyncio.sleep(member.backoff.next_delay())
                continue
            if self._owner.closing:  # connected just as the transport shuts down
                writer.close()
                return
            connection = PeerConnection(self._owner, reader, writer, outbound=True, member=member)
            await connection.run()
            if connection.reached_itself and self._is_own_listener(writer):
                member.state = "self"  # its own address among its peers: nothing to dial
            if member.state == "self":
                return
            if member.node not in self.connections:  # not kept alive by another connection
                self.members.mark_down(member)
                if self._give_up(member):
                    return
                await asyncio.sleep(member.backoff.next_delay())

    def _is_own_listener(self, writer: asyncio.StreamWriter) -> bool:
        """Whether an outbound connection reached this node's own listening socket (and not a
        relay that sent the dial back: that is refused, and the member dialled again)."""
        advertised = self._owner.advertised_address
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        if advertised is None or not isinstance(peer, tuple) or not isinstance(local, tuple):
            return False
        listening_port = int(advertised.rpartition(":")[2])
        return bool(peer[1] == listening_port and peer[0] == local[0])

    def _give_up(self, member: Member) -> bool:
        """Forget an address a peer told us of that has never answered as a node, after a few
        tries: else one gossiped list of a third party's addresses (a buggy or hostile member)
        would have this node dial each one for ``member_timeout``. A real member is taught again
        by the next gossip of any peer connected to it."""
        if member.seed or member.ever_connected or member.backoff.attempts < LEARNED_TRIES:
            return False
        logger.info("forgetting %s: learned from a peer, never answered as a node", member.address)
        self.members.forget(member)
        return True

    def _may_learn(self) -> bool:
        """Whether to take on another address nobody here has connected to yet: at most
        MAX_UNPROVEN at a time, so a long gossiped list is tried a few at a time."""
        unproven = sum(
            1 for m in self.members.by_address.values() if not (m.seed or m.ever_connected)
        )
        return unproven < MAX_UNPROVEN

    def heard_hello(self, connection: PeerConnection, hello: dict[str, Any]) -> None:
        """Learn the members a peer told us about, and its own address, and dial the new ones."""
        if not self._learn:
            return
        for address in [hello["addr"], *hello["members"]]:
            if address is None or address == self._owner.advertised_address:
                continue
            if not self._may_learn():
                break
            member = self.members.learn(address)
            if member is not None:
                if address == hello["addr"]:
                    member.node = connection.node
                self._owner.spawn(self._dial(member))

    def heard_members(self, addresses: list[str]) -> None:
        """Learn the members a peer gossiped (a checked MEMBERS frame), and dial the new ones."""
        if not self._learn:
            return
        for address in addresses:
            if address == self._owner.advertised_address:
                continue
            if not self._may_learn():
                break
            member = self.members.learn(address)
            if member is not None:
                logger.info("learned of %s from gossip", address)
                self._owner.spawn(self._dial(member))

    # Gossip ---------------------------------------------------------------------------------------

    def gossip_soon(self) -> None:
        """Tell every peer the connected members in a moment (one frame for many changes)."""
        if not self._learn or self._gossip_due or self._owner.closing:
            return
        self._gossip_due = True
        asyncio.get_running_loop().call_later(GOSSIP_DELAY, self._gossip_to_all)

    def _gossip_to_all(self) -> None:
        self._gossip_due = False
        if not self._owner.closing:
            addresses = self.member_addresses()
            for connection in list(self.connections.values()):
                connection.send_members(addresses)

    def gossip_to(self, connection: PeerConnection) -> None:
        """Tell one peer the connected members (every anti-entropy round, to a random peer)."""
        if self._learn:
            connection.send_members(self.member_addresses())

    # A connection's life ------------------------------------------------------------------------

    def opened(self, connection: PeerConnection) -> None:
        self._open.add(connection)

    def closed(self, connection: PeerConnection) -> None:
        self._open.discard(connection)

    def handshake_ended(self, connection: PeerConnection) -> None:
        """Free the handshake slot an accepted connection held (a no-op for the others)."""
        source = self._gated.pop(connection, None)
        if source is not None:
            self._gate.release(source, connection)

    def register(self, connection: PeerConnection) -> bool:
        """Admit a connection after its handshake; False if it must close (self, duplicate)."""
        node = connection.node
        assert node is not None
        if node == self._owner.node_id:
            if connection.member is not None:
                connection.member.state = "self"
            return False
        existing = self.connections.get(node)
        if existing is not None:
            # Two connections to one node (both dialed at once): both sides keep the one
            # opened by the node with the smaller id, so they agree without talking.
            if existing.initiator <= connection.initiator:
                return False
            existing.close()
        self.connections[node] = connection
        self._owner.count("connections_opened")
        connection.member = connection.member or self._member_for(connection)
        for member in self.members.by_address.values():
            if member is connection.member or member.node == node:
                self.members.mark_connected(member, node)
        logger.info("connected to %s", connection)
        self.gossip_soon()
        return True

    def _member_for(self, connection: PeerConnection) -> Member | None:
        if connection.advertised is not None:
            return self.members.by_address.get(connection.advertised)
        return None

    def unregister(self, connection: PeerConnection) -> None:
        node = connection.node
        if node is not None and self.connections.get(node) is connection:
            del self.connections[node]
            logger.info("disconnected from %s", connection)
            event = self._reconnect.pop(node, None)
            if event is not None:
                event.set()
            for member in self.members.by_address.values():
                if member.node == node:
                    self.members.mark_down(member)

    # Closing ------------------------------------------------------------------------------------

    def leave(self) -> None:
        """Say goodbye to every admitted peer; close the connections still in their handshake."""
        for connection in list(self._open):
            if connection in self.connections.values():
                connection.say_goodbye()
            else:
                connection.close()

    async def close_stragglers(self) -> None:
        """Once the transport's tasks are gone: end what was opened during the shutdown."""
        # Connections accepted during the shutdown get their handler task a loop turn later
        # (it closes them at once); a few turns let every such task run before the loop stops.
        for _ in range(5):
            if self._handlers:  # their connections are closed: they are finishing
                await asyncio.wait(list(self._handlers), timeout=2.0)
            for connection in list(self._open):  # opened during the shutdown
                connection.close()
            await asyncio.sleep(0)  # let the goodbyes reach the sockets


def _source_address(writer: asyncio.StreamWriter) -> str:
    """Whom the per-address cap counts: a host, not a port; for IPv6, its /64.

    One IPv6 host is routinely given a whole /64 (2**64 addresses), so counting single IPv6
    addresses would let one attacker take every slot from as many addresses as it likes.
    """
    peer = writer.get_extra_info("peername")
    host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
    return source_key(host)
