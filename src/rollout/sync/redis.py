"""Moved to :mod:`rollout.redis`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.redis")

from ..redis import RedisTransport  # noqa: E402

__all__ = ["RedisTransport"]
