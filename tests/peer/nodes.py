"""Small helpers for tests that drive real node processes (rollout.testing.cluster)."""

from __future__ import annotations

from typing import Any

from rollout.testing.cluster import Node

__all__ = ["split", "sync_stats"]


def split(address: str) -> tuple[str, int]:
    """``"host:port"`` as a socket address."""
    host, _, port = address.rpartition(":")
    return host, int(port)


def sync_stats(node: Node) -> dict[str, Any]:
    """The node's ``stats()["sync"]``."""
    stats: dict[str, Any] = node.call("stats")["sync"]
    return stats
