"""The transport interface: how a replica exchanges deltas and digests with other replicas.

The transports themselves live with their backends: ``rollout.peer.PeerTransport`` (TCP between
the processes themselves), ``rollout.redis.RedisTransport`` (pub/sub) and
``rollout.memory.MemoryTransport`` (in one process, for tests). Each is imported only when used,
so ``import rollout`` does not load asyncio or redis-py.
"""

from __future__ import annotations

from ._base import SyncHost, Transport

__all__ = ["SyncHost", "Transport"]
