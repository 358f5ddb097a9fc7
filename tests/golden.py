"""The real Ruby gem's recording (decisions and Redis records of rollout 2.6.2), found once.

It lives outside the repository: ``$ROLLOUT_GOLDEN`` names it, else ``shared/golden/`` beside the
checkout or above it (where CI puts it). A missing file is an error, not a skip: these tests
are the proof that our buckets and records are the gem's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

__all__ = ["GOLDEN_NAME", "find_golden", "load_golden"]

GOLDEN_NAME: Final = "shared/golden/ruby-rollout-2.6.2.json"


def find_golden() -> Path:
    override = os.environ.get("ROLLOUT_GOLDEN")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for directory in here.parents:
        candidate = directory / GOLDEN_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{GOLDEN_NAME} not found in any parent of {here.parent}; set ROLLOUT_GOLDEN to its path"
    )


def load_golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(find_golden().read_text(encoding="utf-8"))
    return loaded
