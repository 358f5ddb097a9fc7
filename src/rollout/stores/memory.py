"""Moved to :mod:`rollout.memory`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.memory")

from ..memory import MemoryStore  # noqa: E402

__all__ = ["MemoryStore"]
