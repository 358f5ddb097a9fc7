"""Which implementation of the flag check a Rollout gets: the C accelerator or pure Python.

``rollout._core._speedups`` (``_speedups.c``) is the same check as the Python functions that
rollout._core.evaluate and rollout._core.specialize generate, step for step, compiled: the
binary wheels carry it, and a build from source compiles it where a C compiler is found. The
Python functions are the reference and the fallback: a Rollout uses them when the module is not
there (a pure-Python wheel, a build without a compiler), or when ``ROLLOUT_PURE_PYTHON=1`` is in
the environment at import (the tests run both ways; a user can rule the accelerator out).

:data:`speedups` is read when a Rollout is made and when a flag is compiled, so a test may set
it to None for the Rollouts it makes afterwards.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["ENVIRONMENT", "implementation", "speedups"]

#: Set to 1 to use the pure-Python check even where the accelerator is installed.
ENVIRONMENT = "ROLLOUT_PURE_PYTHON"

speedups: ModuleType | None = None
if os.environ.get(ENVIRONMENT, "") != "1":
    try:
        from . import _speedups
    except ImportError:  # not built here: the Python check
        pass
    else:
        speedups = _speedups


def implementation() -> str:
    """``"C"`` when the accelerator makes the checks of the Rollouts made now, else ``"Python"``."""
    return "C" if speedups is not None else "Python"
