"""The real Ruby gem's recording (decisions and Redis records of rollout 2.6.2).

The file, ``tests/recordings/ruby-rollout-2.6.2.json``, was recorded by driving the gem's own
unmodified source against a real Redis server; it is kept byte for byte as recorded (its
``_about`` says what each part holds). ``$ROLLOUT_GOLDEN`` names another recording to test
against instead. These tests are the proof that our buckets and records are the gem's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

__all__ = ["GOLDEN_PATH", "find_golden", "load_golden"]

GOLDEN_PATH: Final = Path(__file__).resolve().parent / "recordings" / "ruby-rollout-2.6.2.json"


def find_golden() -> Path:
    override = os.environ.get("ROLLOUT_GOLDEN")
    return Path(override) if override else GOLDEN_PATH


def load_golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(find_golden().read_text(encoding="utf-8"))
    return loaded
