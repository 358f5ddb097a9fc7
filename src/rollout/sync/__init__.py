"""Sync transports: move deltas and digests between replicas.

``PeerTransport`` (TCP between the processes themselves) lives in ``rollout.sync.peer`` and is
imported only when used, so ``import rollout`` does not load asyncio.
"""

from __future__ import annotations

from ._base import SyncHost, Transport

__all__ = ["SyncHost", "Transport"]
