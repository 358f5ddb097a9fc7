"""The transport interface: how a replica exchanges deltas and digests with other replicas.

The transports themselves live with their backends: ``rollout.peer.PeerTransport`` (TCP between
the processes themselves), ``rollout.redis.RedisTransport`` (pub/sub),
``rollout.nats.NatsTransport`` (a JetStream stream) and
``rollout.memory.MemoryTransport`` (in one process, for tests). Each is imported only when used,
so ``import rollout`` does not load asyncio, redis-py or nats-py.
"""

from __future__ import annotations

from ._base import SyncHost, Transport

__all__ = ["SyncHost", "Transport"]
