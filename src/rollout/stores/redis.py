"""Moved to :mod:`rollout.redis`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.redis")

from ..redis import RedisStore  # noqa: E402

__all__ = ["RedisStore"]
