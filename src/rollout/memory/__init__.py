"""The in-memory backend: a store for one process (and for tests) and an in-process transport.

:class:`MemoryTransport` replicates between replicas of one process through a
:class:`MemoryNetwork`, with faults to inject (partitions, lost and held messages): replication
tested without sockets or Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._store import MemoryStore

if TYPE_CHECKING:
    from ._network import MemoryNetwork
    from ._transport import MemoryTransport

__all__ = ["MemoryNetwork", "MemoryStore", "MemoryTransport"]


def __getattr__(name: str) -> Any:
    # The transport and its network load when first asked for: every `import rollout` loads
    # this package for MemoryStore, and only tests replicate in memory.
    if name == "MemoryNetwork":
        from ._network import MemoryNetwork

        return MemoryNetwork
    if name == "MemoryTransport":
        from ._transport import MemoryTransport

        return MemoryTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
