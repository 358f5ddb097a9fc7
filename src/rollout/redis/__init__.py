"""The Redis backend: Redis as a shared replica, its pub/sub as the transport, and the records of
the Ruby rollout gem (:mod:`rollout.redis.ruby`) so Ruby and Python services share flags.

Needs redis-py (``pip install 'rollout[redis]'``); nothing here is imported by ``import rollout``.
"""

from __future__ import annotations

from ._store import RedisStore
from ._transport import RedisTransport

__all__ = ["RedisStore", "RedisTransport"]
