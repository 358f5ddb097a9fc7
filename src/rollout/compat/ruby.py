"""Moved to :mod:`rollout.redis.ruby`: works until rollout 0.3, with a DeprecationWarning."""

from .._moved import moved

moved(__name__, "rollout.redis.ruby")

from ..redis.ruby import *  # noqa: E402, F403  (every public name, whatever it grows to)
from ..redis.ruby import __all__  # noqa: E402, F401  (the same public names)
