"""Old import paths of modules that moved when the package was laid out by layer.

Each old path is a module of two lines that calls :func:`moved` and re-exports the new one's
names, so code written against 0.1 keeps working for one release and is told where to go.
"""

from __future__ import annotations

import warnings

__all__ = ["REMOVED_IN", "moved"]

#: The release that drops the old paths.
REMOVED_IN = "0.3"


def moved(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; the old path goes away in rollout {REMOVED_IN}",
        DeprecationWarning,
        stacklevel=3,
    )
