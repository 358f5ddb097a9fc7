"""``eventually(condition)``: wait for something that happens in the background.

Replication, pub/sub and file watching finish on another thread or process, so a test polls
until the condition holds instead of sleeping a fixed time (a fixed sleep is either too short on
a loaded machine or wastes time on an idle one). The deadline is generous on purpose: the
machines tests run on are shared and noisy, and a passing condition returns at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DEFAULT_TIMEOUT", "eventually"]

T = TypeVar("T")

#: Seconds to wait before giving up, unless a caller says otherwise.
DEFAULT_TIMEOUT = 20.0


def eventually(
    condition: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
    *,
    interval: float = 0.01,
) -> T:
    """Call ``condition`` until it returns something true; return that.

    Raises ``AssertionError`` naming ``what`` (or the condition) if ``timeout`` seconds pass
    first. An exception from ``condition`` propagates at once: it is a failure, not a "not yet".
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition!r}")
        time.sleep(interval)
