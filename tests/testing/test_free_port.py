"""``rollout.testing.cluster.free_port``: ports a cluster's nodes bind later."""

from __future__ import annotations

import socket

from rollout.testing.cluster import free_port


def test_the_ports_of_one_cluster_are_distinct_and_bindable() -> None:
    # A 20-node mesh takes 20 ports before any node binds one: drawn at random with no memory,
    # 500 draws from the range below the ephemeral ports all but surely repeat one.
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))
