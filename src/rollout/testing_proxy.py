"""Moved to :mod:`rollout.testing.proxy`: works until rollout 0.3, with a DeprecationWarning."""

from ._moved import moved

moved(__name__, "rollout.testing.proxy")

from .testing.proxy import FaultProxy, LinkTable  # noqa: E402

__all__ = ["FaultProxy", "LinkTable"]
