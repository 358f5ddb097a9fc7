"""Helpers shared by the Redis tests (node processes are rollout.testing.cluster.Node)."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Until ``condition()`` is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what or condition}")
        time.sleep(0.02)
