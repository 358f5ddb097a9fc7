"""The peer transport passes the shared transport conformance suite, in two set-ups."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout import Rollout
from rollout.peer import PeerTransport
from rollout.sync import Transport
from rollout.testing import PartitionConformance, TransportConformance
from rollout.testing.cluster import DEFAULT_SECRET as SECRET
from rollout.testing.cluster import free_port
from rollout.testing.proxy import LinkTable


class TestPeerTransport(TransportConformance):
    """The default set-up: every node has every other as a peer, and learns members."""

    def make_transports(self, count: int) -> list[Transport]:
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(count)]
        return [
            PeerTransport(
                listen=address,
                peers=[a for a in addresses if a != address],
                secret=SECRET,
                anti_entropy_interval=0.2,
            )
            for address in addresses
        ]


class TestPeerTransportThroughProxies(PartitionConformance):
    """Every link through a proxy of its own (a LinkTable), so that isolate() can cut it.

    Node i dials only the nodes after it: one connection per pair, made by the node that has
    the other as a peer. (When both dial, the node whose own connection is dropped as the
    duplicate never learns which node its peer address is, since the proxy's address is not
    the one that node advertises; its ``wait_synced()`` then waits for that address forever.)
    """

    @pytest.fixture(autouse=True)
    def _links(self) -> Iterator[None]:
        self.link_tables: list[LinkTable] = []
        yield
        for links in self.link_tables:
            links.close()

    def make_transports(self, count: int) -> list[Transport]:
        self.names = [f"n{i}" for i in range(count)]
        ports = {name: free_port() for name in self.names}
        links = LinkTable({name: f"127.0.0.1:{port}" for name, port in ports.items()})
        self.link_tables.append(links)
        return [
            PeerTransport(
                listen=f"127.0.0.1:{ports[name]}",
                peers=[links.address(name, later) for later in self.names[i + 1 :]],
                secret=SECRET,
                anti_entropy_interval=0.2,
                learn_members=False,  # a learned address would bypass the proxies
            )
            for i, name in enumerate(self.names)
        ]

    def isolate(self, index: int) -> None:
        alone = self.names[index]
        self.link_tables[-1].partition([alone], [n for n in self.names if n != alone])

    def heal(self) -> None:
        self.link_tables[-1].heal_all()


def test_wait_synced_is_false_while_a_known_peer_is_gone() -> None:
    transports = TestPeerTransport().make_transports(2)
    first, second = (Rollout(transport=t) for t in transports)
    try:
        assert first.wait_synced(20)
        second.close()
        first.activate("chat")  # written here; the peer that should get it is gone
        assert first.wait_synced(0.5) is False
        assert first.wait_synced(0.5, peers=0) is True
    finally:
        first.close()
