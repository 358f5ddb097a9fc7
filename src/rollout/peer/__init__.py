"""The peer backend: processes replicate to each other directly over TCP, with no server to run.

Imported only when ``Rollout(listen=..., peers=...)`` asks for it, so ``import rollout`` does not
load asyncio.
"""

from __future__ import annotations

from ._transport import PeerTransport

__all__ = ["PeerTransport"]
