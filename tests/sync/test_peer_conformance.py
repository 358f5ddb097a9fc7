"""The peer transport passes the shared transport conformance suite."""

from __future__ import annotations

from rollout.sync import Transport
from rollout.sync.peer import PeerTransport
from rollout.testing import TransportConformance
from rollout.testing_cluster import free_port


class TestPeerTransport(TransportConformance):
    def make_transports(self, count: int) -> list[Transport]:
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(count)]
        return [
            PeerTransport(
                listen=address,
                peers=[a for a in addresses if a != address],
                secret="conformance",
                anti_entropy_interval=0.2,
            )
            for address in addresses
        ]
