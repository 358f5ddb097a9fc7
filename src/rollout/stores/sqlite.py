"""Moved to :mod:`rollout.sqlite`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.sqlite")

from ..sqlite import SQLiteStore  # noqa: E402

__all__ = ["SQLiteStore"]
