"""Moved to :mod:`rollout.redis`: this path works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.redis (the mirror itself is private: use Rollout(ruby_compat=True))")

from ..redis._ruby_mirror import RubyMirror  # noqa: E402

__all__ = ["RubyMirror"]
