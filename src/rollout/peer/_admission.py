"""Caps on accepted connections that have not finished their handshake.

Until a peer has proved the secret it is a stranger, and every stranger costs the node a socket,
a task and a few kilobytes. The caps bound that cost: at most ``total`` handshakes at once, and
at most ``per_address`` from one source address, so one host cannot take every slot. A
connection over the per-address cap is closed at once, before a byte is read or written; over
the total cap, the oldest handshake of the busiest address makes room (see ``admit``).
A handshake that does not finish within the transport's ``handshake_timeout`` frees its slot.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from typing import Generic, TypeVar

__all__ = ["HandshakeGate", "StrangerLog", "is_loopback", "source_key"]

T = TypeVar("T")


class HandshakeGate(Generic[T]):
    """The handshakes in progress, in total and per source address (loop thread only).

    Each is an ``entry`` (the connection) held by its source address, oldest first.
    """

    def __init__(self, *, total: int, per_address: int) -> None:
        for name, value in (("max_handshakes", total), ("max_handshakes_per_address", per_address)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._total = total
        self._per_address = per_address
        self._pending: dict[str, list[T]] = {}
        self.in_progress = 0

    def admit(self, address: str, entry: T) -> tuple[bool, T | None]:
        """Take a slot for ``entry`` from ``address``: ``(admitted, evicted)``.

        Over the per-address cap: refused. Over the total cap: the oldest handshake of the
        address that holds the most slots is evicted for it (the caller ends that one), if that
        address holds more than the newcomer's would; else refused. So a few busy addresses
        that keep every slot taken cannot keep out a peer from anywhere else: a stranger's
        silent connections lose their slots to newcomers, and a real peer needs its slot for
        the milliseconds its handshake takes.
        """
        held = self._pending.get(address, [])
        if len(held) >= self._per_address:
            return False, None
        evicted: T | None = None
        if self.in_progress >= self._total:
            busiest = max(self._pending, key=lambda a: len(self._pending[a]))
            if len(self._pending[busiest]) <= len(held) + 1:
                return False, None
            evicted = self._pending[busiest][0]
            self.release(busiest, evicted)
        self._pending.setdefault(address, []).append(entry)
        self.in_progress += 1
        return True, evicted

    def release(self, address: str, entry: T) -> None:
        """Give back the slot of a handshake that ended (completed or not) or was evicted."""
        held = self._pending.get(address, [])
        if entry not in held:
            raise RuntimeError(f"no handshake from {address!r} holds a slot for {entry!r}")
        held.remove(entry)
        if not held:
            del self._pending[address]
        self.in_progress -= 1


# Cached: the HTTP server asks for every request that carries a credential, and parsing an
# address is a tenth of a check's cost; addresses repeat, and the cache is bounded.
@functools.lru_cache(maxsize=4096)
def source_key(host: str) -> str:
    """``host`` as the per-address cap counts it: an IPv6 address as its /64 network."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])  # no zone id ("fe80::1%eth0")
    except ValueError:
        return host  # a Unix socket path or the like
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:  # "::ffff:10.0.0.1" is the IPv4 host it maps
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class StrangerLog:
    """Logs strangers whose handshake failed: each at debug level, a summary at most once a
    ``interval`` seconds. Anyone can send bad bytes as fast as they can connect; a line each
    would fill the disk (2,000 garbage connections wrote 2,000 warnings)."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._count = 0
        self._logged_at = -interval

    def refused(self, label: str, error: Exception) -> None:
        self._logger.debug("closing connection from %s: %s", label, error)
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at >= self._interval:
            self._logger.warning(
                "refused %d connections from peers that did not complete the handshake "
                "(latest from %s: %s)",
                self._count,
                label,
                error,
            )
            self._count, self._logged_at = 0, now


def is_loopback(host: str) -> bool:
    """Whether a listen address can be reached only from this machine (then a node may listen
    without a secret)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
