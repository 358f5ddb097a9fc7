"""The process's file descriptors for ``rollout serve``: the limit, the connection cap under it,
and a quiet log when it runs out anyway.

Each connection is a descriptor. The soft ``RLIMIT_NOFILE`` is often 1,024 (or 256 on macOS)
while the hard one allows far more, so :func:`raise_descriptor_limit` raises the soft limit to
the hard one at start, and :func:`connection_cap` keeps the connections enough below it for the
store, the peers and the log (see ``_connections``).

Should accepting fail anyway (``EMFILE``: another part of the process holds descriptors),
asyncio's accept loop reports it once per pending connection, with a traceback, in a tight
loop: 128 MB of log in 12 s. :func:`quiet_accept_errors` turns that into one line every
:data:`ACCEPT_LOG_INTERVAL` seconds with the number of repeats.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Any

__all__ = [
    "ACCEPT_LOG_INTERVAL",
    "MAX_CONNECTIONS",
    "Throttled",
    "accept_batch",
    "connection_cap",
    "quiet_accept_errors",
    "quiet_invalid_requests",
    "raise_descriptor_limit",
]

#: The most connections ``serve`` holds, however many descriptors it may open.
MAX_CONNECTIONS = 4096
#: Seconds between two log lines saying connections cannot be accepted.
ACCEPT_LOG_INTERVAL = 10.0
#: The soft limit asked for when the hard one is unlimited.
_UNLIMITED_TARGET = 65536

logger = logging.getLogger("rollout")

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Throttled:
    """A log line written at most once per ``interval`` seconds, saying how many it stands for."""

    def __init__(self, log: logging.Logger, interval: float) -> None:
        self._log = log
        self._interval = interval
        self._last = -interval
        self._skipped = 0

    def info(self, message: str, *args: object) -> None:
        self._emit(logging.INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        self._emit(logging.WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        self._emit(logging.ERROR, message, args)

    def _emit(self, level: int, message: str, args: tuple[object, ...]) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._skipped += 1
            return
        if self._skipped:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, self._skipped, now - self._last)
        self._last, self._skipped = now, 0
        self._log.log(level, message, *args)


class _OncePerInterval(logging.Filter):
    """Lets one record with a given message through per interval; the next says how many
    were held back."""

    def __init__(self, message: str, interval: float) -> None:
        super().__init__()
        self._message = message
        self._interval = interval
        self._last = -interval
        self._skipped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self._message:
            return True
        now = time.monotonic()
        if now - self._last < self._interval:
            self._skipped += 1
            return False
        if self._skipped:
            record.msg = f"{record.msg} (and %d more like it in the last %.0f s)"
            record.args = (self._skipped, now - self._last)
        self._last, self._skipped = now, 0
        return True


#: What uvicorn logs, as a warning, for each request that is not HTTP.
INVALID_REQUEST = "Invalid HTTP request received."


def quiet_invalid_requests(log: logging.Logger | None = None) -> logging.Filter:
    """Log uvicorn's "Invalid HTTP request received." once per :data:`ACCEPT_LOG_INTERVAL`
    seconds with a count: anyone can send garbage, and each used to be a line, access log on
    or off. Returns the filter (installed on ``log``, uvicorn's error logger by default)."""
    quiet = _OncePerInterval(INVALID_REQUEST, ACCEPT_LOG_INTERVAL)
    (log or logging.getLogger("uvicorn.error")).addFilter(quiet)
    return quiet


def raise_descriptor_limit() -> int | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one where allowed; the soft limit now in
    force (None where there is no such limit, e.g. Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. macOS refuses more than OPEN_MAX
            logger.info("could not raise the open file limit from %d to %d: %s", soft, target, exc)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(limit: int | None) -> int:
    """How many connections to hold with ``limit`` descriptors: a quarter (at least 64) is kept
    for everything else the process opens, and never more than :data:`MAX_CONNECTIONS`."""
    if limit is None:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, limit - max(64, limit // 4)))


def accept_batch(limit: int | None, cap: int) -> int:
    """How many connections asyncio may accept in one go (its ``backlog``).

    asyncio accepts up to ``backlog`` connections before the first of them is counted (and an
    old one evicted), so a burst can overshoot the cap by that many descriptors: keep it to an
    eighth of what the cap leaves free.
    """
    if limit is None:
        return 1024
    return max(4, min(1024, (limit - cap) // 8))


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log ``loop``'s "cannot accept: out of descriptors" errors once per interval, no traceback.

    Everything else still goes to the handler that was installed (or asyncio's default).
    """
    previous = loop.get_exception_handler()
    throttled = Throttled(logger, ACCEPT_LOG_INTERVAL)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCES:
            throttled.error(
                "cannot accept connections: %s (%s); asyncio retries every second",
                exc.strerror,
                context.get("message", ""),
            )
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
