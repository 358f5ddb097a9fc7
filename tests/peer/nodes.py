"""Small helpers for tests that drive real node processes (rollout.testing.cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollout.testing.cluster import Node

__all__ = ["split", "sync_stats", "vm_rss_kib"]


def split(address: str) -> tuple[str, int]:
    """``"host:port"`` as a socket address."""
    host, _, port = address.rpartition(":")
    return host, int(port)


def sync_stats(node: Node) -> dict[str, Any]:
    """The node's ``stats()["sync"]``."""
    stats: dict[str, Any] = node.call("stats")["sync"]
    return stats


def vm_rss_kib(pid: int) -> int:
    """A process's resident memory now, in KiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")
