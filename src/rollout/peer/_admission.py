"""Caps on accepted connections that have not finished their handshake.

Until a peer has proved the secret it is a stranger, and every stranger costs the node a socket,
a task and a few kilobytes. The caps bound that cost: at most ``total`` handshakes at once, and
at most ``per_address`` from one source address, so one host cannot take every slot. A
connection over a cap is closed at once, before a byte is read or written; a handshake that
does not finish within the transport's ``handshake_timeout`` frees its slot.
"""

from __future__ import annotations

import ipaddress

__all__ = ["HandshakeGate", "source_key"]


class HandshakeGate:
    """Counts the handshakes in progress, in total and per source address (loop thread only)."""

    def __init__(self, *, total: int, per_address: int) -> None:
        for name, value in (("max_handshakes", total), ("max_handshakes_per_address", per_address)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._total = total
        self._per_address = per_address
        self._by_address: dict[str, int] = {}
        self.in_progress = 0

    def admit(self, address: str) -> bool:
        """Take a slot for a handshake from ``address``; False (and no slot) over a cap."""
        held = self._by_address.get(address, 0)
        if self.in_progress >= self._total or held >= self._per_address:
            return False
        self._by_address[address] = held + 1
        self.in_progress += 1
        return True

    def release(self, address: str) -> None:
        """Give back the slot of a handshake that ended (completed or not)."""
        held = self._by_address.get(address, 0)
        if held <= 0:
            raise RuntimeError(f"no handshake from {address!r} holds a slot")
        if held == 1:
            del self._by_address[address]
        else:
            self._by_address[address] = held - 1
        self.in_progress -= 1


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
