"""The peer transport passes the shared transport conformance suite."""

from __future__ import annotations

from rollout import Rollout
from rollout.peer import PeerTransport
from rollout.sync import Transport
from rollout.testing import TransportConformance
from rollout.testing.cluster import free_port


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
