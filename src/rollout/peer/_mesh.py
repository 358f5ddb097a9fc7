"""The mesh: which nodes a peer transport is connected to, and how it gets there.

Dialling members (with backoff, forgetting non-seeds after ``member_timeout``), accepting
connections, admitting them after the handshake (one connection per node pair), and learning
members from hellos. A mixin of :class:`~rollout.sync.peer.PeerTransport`, which owns the state;
everything here runs on the transport's loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import threading
from typing import TYPE_CHECKING, Any, cast

from ..sync._base import SyncHost
from ._connection import PeerConnection
from ._loop import LoopThread
from ._membership import Member, Members, parse_address

if TYPE_CHECKING:
    from ._transport import PeerTransport

__all__ = ["Mesh"]

logger = logging.getLogger("rollout.sync")


class Mesh:
    """Connections and members of a peer transport (state declared here, owned by it)."""

    host: SyncHost
    advertised_address: str | None
    connections: dict[int, PeerConnection]
    _open: set[PeerConnection]
    _handlers: set[asyncio.Task[None]]
    _members: Members
    _reconnect: dict[int, asyncio.Event]
    _counters: dict[str, int]
    _synced: threading.Condition
    _loop: LoopThread | None
    _closing: bool
    _learn: bool
    _member_timeout: float
    _client_ssl: ssl_module.SSLContext | None

    @property
    def node_id(self) -> int:
        return self.host.node_id

    def _spawn(self, coro: Any) -> None:
        raise NotImplementedError

    def _check_clock(self) -> None:
        raise NotImplementedError

    def _transport(self) -> PeerTransport:
        # A mixin of PeerTransport only: `self` is always one.
        return cast("PeerTransport", self)

    def heard_clock(self, connection: PeerConnection, their_ms: int) -> None:
        raise NotImplementedError

    def member_addresses(self) -> list[str]:
        return self._members.addresses() if self._learn else []

    def members(self) -> list[dict[str, Any]]:
        loop = self._loop
        if loop is None:
            return []
        future = asyncio.run_coroutine_threadsafe(self._describe_members(), loop.loop)
        return future.result(timeout=5)

    async def _describe_members(self) -> list[dict[str, Any]]:
        labels = {node: c.peer_label for node, c in self.connections.items()}
        return self._members.describe(labels)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted just as the transport shuts down: nobody will run it
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:  # so close() can wait for it
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        await PeerConnection(self._transport(), reader, writer, outbound=False).run()

    async def _dial(self, member: Member) -> None:
        while not self._closing and self._members.by_address.get(member.address) is member:
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
                    reader, writer = await asyncio.open_connection(
                        host,
                        port,
                        ssl=self._client_ssl,
                        server_hostname=host if self._client_ssl else None,
                    )
            except (OSError, TimeoutError, ssl_module.SSLError) as exc:
                self._members.mark_down(member)
                if self._members.expired(member):
                    logger.info(
                        "forgetting %s: unreachable for %.0f s",
                        member.address,
                        self._member_timeout,
                    )
                    self._members.forget(member)
                    return
                logger.debug("cannot reach %s: %r", member.address, exc)
                await asyncio.sleep(member.backoff.next_delay())
                continue
            if self._closing:  # connected just as the transport shuts down
                writer.close()
                return
            await PeerConnection(
                self._transport(), reader, writer, outbound=True, member=member
            ).run()
            if member.state == "self":
                return
            if member.node not in self.connections:  # not kept alive by another connection
                self._members.mark_down(member)
                await asyncio.sleep(member.backoff.next_delay())

    def heard_hello(self, connection: PeerConnection, hello: dict[str, Any]) -> None:
        self.heard_clock(connection, hello["clock"])
        if not self._learn:
            return
        for address in [*hello["members"], hello["addr"]]:
            if address is None or address == self.advertised_address:
                continue
            member = self._members.learn(address)
            if member is not None:
                if address == hello["addr"]:
                    member.node = connection.node
                self._spawn(self._dial(member))

    def opened(self, connection: PeerConnection) -> None:
        self._open.add(connection)

    def closed(self, connection: PeerConnection) -> None:
        self._open.discard(connection)

    def register(self, connection: PeerConnection) -> bool:
        """Admit a connection after its handshake; False if it must close (self, duplicate)."""
        node = connection.node
        assert node is not None
        if node == self.node_id:
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
        self._counters["connections_opened"] += 1
        connection.member = connection.member or self._member_for(connection)
        for member in self._members.by_address.values():
            if member is connection.member or member.node == node:
                self._members.mark_connected(member, node)
        logger.info("connected to %s", connection)
        return True

    def _member_for(self, connection: PeerConnection) -> Member | None:
        if connection.advertised is not None:
            return self._members.by_address.get(connection.advertised)
        return None

    def unregister(self, connection: PeerConnection) -> None:
        node = connection.node
        if node is not None and self.connections.get(node) is connection:
            del self.connections[node]
            logger.info("disconnected from %s", connection)
            event = self._reconnect.pop(node, None)
            if event is not None:
                event.set()
            for member in self._members.by_address.values():
                if member.node == node:
                    self._members.mark_down(member)
        with self._synced:
            self._synced.notify_all()

    # Replication ------------------------------------------------------------------------------
