"""Collecting the registers a moved watermark hides in a big flag, in steps: never one long script.

A save that moves a watermark (``deactivate``, ``delete``, a data or definition reset) hides
every register older than it of the kinds it covers. In a small hash the save's own script
removes them (rollout.redis._scripts, MERGE). In a big one, that script would run for seconds
(a million users: about five), and Redis answers every other client BUSY meanwhile (a writer
past its socket time-out gets StoreOutcomeUnknownError); so the script only names the hash in
its reply, and the writer, once its save is stored, collects it here, in a thread: one COLLECT
script per :data:`~rollout.redis._scripts.STEP` registers, each an HSCAN step that removes what
the watermarks held *then* hide. Other clients are served between steps.

Meanwhile the hash holds hidden registers. They are harmless: every reader drops a register its
flag's watermarks hide, whatever it is read with (a replica's load and merge, so the checks, an
export, the Ruby mirror's records and a copy into another store, which drops them on merge),
as the store's contract allows ("a store may drop hidden registers or keep them").

A writer that stops midway (killed, Redis unreachable: a step's error is logged, since the
save itself is stored and has returned; or closed with a time limit, ``Rollout.close(timeout)``,
which stops it at its next step) leaves the rest hidden and harmless; the next save that
moves one of that flag's watermarks, from any process, collects the whole hash again, leftovers
included. Until then they cost Redis memory, and loads the reading of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.commands.core

__all__ = ["Collections", "collect_hidden"]

logger = logging.getLogger("rollout.redis")


class Collections:
    """A store's collections under way, each in a thread of its own: the save that asked for one
    is stored already, and its writer (holding its replica's lock: no other write of its
    process, and no change from elsewhere, is applied meanwhile) need not wait for seconds of
    steps. Not daemon threads, and the store's close waits for them: a process that writes and
    exits at once (the CLI) still collects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()  # set: every collection ends at its next step

    def start(self, step: redis.commands.core.Script, hashes: Sequence[bytes | str]) -> None:
        thread = threading.Thread(
            target=collect_hidden, args=(step, hashes, self._stop), name="rollout-redis-collect"
        )
        with self._lock:
            self._threads = [running for running in self._threads if running.is_alive()]
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until every collection started has ended; past ``timeout`` seconds, each is stopped
        at its next step (a step takes milliseconds) and the rest stays hidden (logged)."""
        with self._lock:
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            self._stop.set()
            logger.warning(
                "Redis store: closed with hidden registers still to collect; the rest stay "
                "hidden (every reader ignores them) until the flag's next reset collects them"
            )
            for thread in threads:
                thread.join()


def collect_hidden(
    step: redis.commands.core.Script, hashes: Sequence[bytes | str], stop: threading.Event
) -> None:
    """Remove the hidden registers of each hash, a COLLECT ``step`` at a time (see above),
    until done or ``stop`` is set."""
    import redis

    for hash_key in hashes:
        cursor: bytes | str | int = 0
        try:
            while not stop.is_set():
                cursor = step(keys=[hash_key], args=[cursor])
                if int(cursor) == 0:
                    break
        except redis.RedisError as exc:
            shown = (
                hash_key.decode(errors="backslashreplace") if type(hash_key) is bytes else hash_key
            )
            logger.warning(
                "Redis store: collecting the registers hidden in %r stopped: %.300s; the rest "
                "stay hidden (every reader ignores them) until the flag's next reset collects them",
                shown,
                exc,
            )
