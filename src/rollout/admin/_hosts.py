"""Host names: which ones the server answers to (``Auth.host_allowed``), how a Host header
splits into name and port, and whether an ``Origin`` names this server."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["check_hosts", "is_loopback", "same_origin", "split_host"]


def check_hosts(hosts: Iterable[str] | None) -> tuple[str, ...]:
    if hosts is None:
        return ()
    if isinstance(hosts, str) or not isinstance(hosts, Iterable):
        raise TypeError(f"allowed_hosts must be a list of host names, got {hosts!r}")
    checked = []
    for host in hosts:
        if not isinstance(host, str) or not host:
            raise ValueError(f"allowed_hosts: each must be a non-empty str, got {host!r}")
        checked.append(host.lower().rstrip("."))
    return tuple(checked)


@functools.lru_cache(maxsize=1024)  # asked on every request; Host names repeat
def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(host: str) -> tuple[str, int | None]:
    """A Host header's name and port: ``[::1]:8080`` is ``("::1", 8080)``, ``a`` no port."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = (host[1:end], host[end + 1 :]) if end > 0 else (host, "")
    elif host.count(":") == 1:
        name, _, after = host.partition(":")
        rest = ":" + after
    else:
        name, rest = host, ""  # a bare IPv6 address, or no port
    port_text = rest[1:]
    digits = port_text.isascii() and port_text.isdigit()
    number = int(port_text) if rest.startswith(":") and digits else None
    return name.rstrip("."), number


def same_origin(origin: str, host_header: str) -> bool:
    """Whether ``Origin`` names the server the request reached (as its Host header says).

    Schemes are not compared: behind a proxy that ends TLS the browser says https and the app
    sees http. A Host without a port was reached on the default port of whichever scheme the
    browser used, so the Origin must have no port of its own either.
    """
    try:
        parsed = urlsplit(origin)
    except ValueError:  # "http://[oops": an unclosed IPv6 bracket; no browser sends it
        return False
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False  # "null" (a sandboxed frame, a file) and the like
    try:
        origin_port = parsed.port
    except ValueError:
        return False
    default = 443 if parsed.scheme == "https" else 80
    name, port = split_host(host_header)
    if parsed.hostname.rstrip(".") != name:
        return False
    if port is None:
        return origin_port in (None, default)
    return (origin_port or default) == port
