"""Throttling wrong guesses of a token: per client, and over all clients together.

Without it a client could try about 1,250 tokens a second against ``/login`` or a bearer
header. Each *failure* (a wrong bearer token, a wrong token in the sign-in form) is counted
against the client's address (an IPv6 address as its /64, which one host is commonly given
whole) and against the server as a whole, each in a leaky bucket: a burst is allowed, then one
failure per interval. A client over its bucket is answered 429 with ``Retry-After``, without its
credentials being checked at all, right or wrong: so the answer says nothing about a guess, and
being throttled cannot be used as an oracle.

The global bucket bounds what an attacker with many addresses can try. It must not lock the
operator out for as long as someone keeps guessing, so while it is over it *delays* rather than
refuses: a credential is checked in its turn, one per interval in arrival order, each client at
most one waiting at a time, and only when the wait would exceed :data:`MAX_DELAY` is it refused
(429). So the operator signs in a little later, the more addresses guess the later, while the
guesses answered stay at the global rate. Clients that proved an admin token recently (signed in
or used a right bearer token within :data:`TRUSTED_FOR` seconds) skip the line (still held to
their own bucket); an ``evaluate`` token proves nothing (it ships to every visitor's browser).

The bookkeeping is bounded: a client whose bucket has drained is forgotten, and at most
``max_clients`` buckets (and ``max_trusted`` known clients) are kept, the least recently seen
dropped first; an attacker who makes the server forget its own bucket that way gains a burst
per address, which the global bucket bounds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from ..peer._admission import source_key

__all__ = ["MAX_DELAY", "TRUSTED_FOR", "Throttle", "retry_after"]

logger = logging.getLogger(__name__)

#: Seconds a client that proved a token stays exempt from the global throttle.
TRUSTED_FOR: Final = 12 * 3600.0
#: Seconds a check may be held for its turn under the global throttle; a longer wait is a 429.
MAX_DELAY: Final = 5.0
#: Seconds between two log lines about wrong tokens: a guesser must not fill the disk.
LOG_INTERVAL: Final = 60.0


class _Bucket:
    """A leaky bucket kept as the time it will be empty (the generic cell rate algorithm)."""

    __slots__ = ("burst", "empty_at", "interval")

    def __init__(self, burst: int, interval: float) -> None:
        self.burst = burst
        self.interval = interval
        self.empty_at = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until one more failure fits (0: it fits now)."""
        return max(0.0, self.empty_at - now - (self.burst - 1) * self.interval)

    def fill(self, now: float) -> None:
        self.empty_at = max(self.empty_at, now) + self.interval


class Throttle:
    """Failures per client and in total; await :meth:`turn` before checking a credential, and
    say how it went with :meth:`failed` or :meth:`succeeded`.

    Defaults: a client may fail 10 times at once, then once every 2 s (1,800 an hour); all
    clients together 100 at once, then 10 a second. Used from the event loop's thread only.
    """

    def __init__(
        self,
        *,
        burst: int = 10,
        interval: float = 2.0,
        global_burst: int = 100,
        global_interval: float = 0.1,
        max_clients: int = 10_000,
        max_trusted: int = 1_000,
        max_delay: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._interval = interval
        self._global = _Bucket(global_burst, global_interval)
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._trusted: OrderedDict[str, float] = OrderedDict()
        self._max_clients = max_clients
        self._max_trusted = max_trusted
        self._max_delay = max_delay
        self._clock = clock
        #: Clients whose check waits for its turn, holding a slot of the global bucket.
        self._waiting: set[str] = set()
        self._unlogged = 0
        self._logged_at = -math.inf

    def wait(self, address: str) -> float:
        """Seconds before a credential of ``address`` would be checked without waiting in line
        (0: now)."""
        now = self._clock()
        key = source_key(address)
        bucket = self._clients.get(key)
        own = bucket.wait(now) if bucket is not None else 0.0
        if own > 0 or self._is_trusted(key, now):
            return own
        return self._global.wait(now)

    def turn_now(self, address: str) -> float | None:
        """:meth:`turn` when it needs no wait in line (0: check now; more: refuse for that many
        seconds), or None: await :meth:`turn`. Nearly every request is answered here, without
        the coroutine ``turn`` is."""
        now = self._clock()
        key = source_key(address)
        bucket = self._clients.get(key)
        own = bucket.wait(now) if bucket is not None else 0.0
        if own > 0:
            return own
        since = self._trusted.get(key)  # _is_trusted, without a call for the trusted
        if since is not None and now - since <= TRUSTED_FOR:
            return 0.0
        if self._is_trusted(key, now) or self._global.wait(now) <= 0:
            return 0.0
        return None

    async def turn(self, address: str) -> float:
        """Wait until a credential from ``address`` may be checked: 0 when it may (then call
        :meth:`failed` or :meth:`succeeded`), else the seconds for ``Retry-After`` (a 429).

        Over its own bucket: refused. Over the global one: the check takes the next free slot
        and waits for it, unless this client already waits or the slot is over ``max_delay``
        away.
        """
        decided = self.turn_now(address)
        if decided is not None:
            return decided
        now = self._clock()
        key = source_key(address)
        wait = self._global.wait(now)
        if wait <= 0:
            return 0.0
        if key in self._waiting:
            return wait
        if wait > self._max_delay:
            return wait - self._max_delay  # when the line is short enough to join
        self._global.fill(now)  # the slot is taken now: the next in line waits longer
        self._waiting.add(key)
        try:
            await asyncio.sleep(wait)
        except BaseException:
            self._waiting.discard(key)
            raise
        return 0.0

    def failed(self, address: str) -> None:
        """Count a wrong credential from ``address``."""
        now = self._clock()
        key = source_key(address)
        bucket = self._clients.pop(key, None) or _Bucket(self._burst, self._interval)
        bucket.fill(now)
        self._clients[key] = bucket  # now the most recently seen
        if key in self._waiting:
            self._waiting.discard(key)  # its slot of the global bucket was taken in turn()
        else:
            self._global.fill(now)
        self._forget(now)
        self._unlogged += 1
        if now - self._logged_at >= LOG_INTERVAL:
            logger.warning(
                "%d wrong token(s) since the last report, the latest from %s (guesses are "
                "throttled: %d per address, then one every %g s)",
                self._unlogged,
                address or "an unknown address",
                self._burst,
                self._interval,
            )
            self._unlogged, self._logged_at = 0, now

    def succeeded(self, address: str, *, trust: bool = True) -> None:
        """A right credential from ``address``: exempt it from the global throttle for a while,
        unless ``trust`` is False (a credential that proves nothing: a browser key, which every
        visitor has, would let each of many addresses guess past the global bound)."""
        key = source_key(address)
        self._waiting.discard(key)
        if not trust:
            return
        self._trusted.pop(key, None)
        self._trusted[key] = self._clock()
        while len(self._trusted) > self._max_trusted:
            self._trusted.popitem(last=False)

    @property
    def clients(self) -> int:
        """How many clients' buckets are kept (bounded by ``max_clients``)."""
        return len(self._clients)

    def _is_trusted(self, key: str, now: float) -> bool:
        since = self._trusted.get(key)
        if since is None:
            return False
        if now - since > TRUSTED_FOR:
            del self._trusted[key]
            return False
        return True

    def _forget(self, now: float) -> None:
        # Oldest first: drop the drained, then whatever is over the cap.
        while self._clients:
            key, oldest = next(iter(self._clients.items()))
            if oldest.empty_at > now and len(self._clients) <= self._max_clients:
                break
            del self._clients[key]


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
