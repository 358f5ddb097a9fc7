"""Moved to :mod:`rollout.peer`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.peer")

from ..peer import PeerTransport  # noqa: E402

__all__ = ["PeerTransport"]
