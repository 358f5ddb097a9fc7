"""How ``Rollout``'s constructor arguments become a transport and a Ruby mirror.

Kept out of the facade: these import their optional parts (asyncio, redis-py, nats-py) only
when asked.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from ..redis._ruby_mirror import ApplyWrite, Render, RubyMirror
    from ..stores._base import Store
    from ..sync._base import Transport

__all__ = ["make_ruby_mirror", "make_transport", "transport_from_url"]


def make_transport(
    transport: Transport | str | None,
    listen: str | None,
    peers: Iterable[str],
    **options: Any,
) -> Transport | None:
    if isinstance(transport, str):
        transport = transport_from_url(transport)
    if transport is not None:
        if listen is not None or peers:
            raise ValueError("pass either transport= or listen=/peers=, not both")
        return transport
    if listen is None and not peers:
        return None
    # Imported here: asyncio and the protocol load only when replication is asked for.
    from ..peer._transport import PeerTransport

    return PeerTransport(listen=listen, peers=peers, **options)


def transport_from_url(url: str) -> Transport:
    """``Rollout(transport="nats://host:4222?namespace=app")``: a transport named by a URL."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in ("nats", "tls"):
        from ..nats import NatsTransport  # imported here: nats-py loads only when asked for

        return NatsTransport.from_url(url)
    from .._core.redact import redact_url

    raise ValueError(
        f"transport: {redact_url(url)!r} is not a transport URL (nats://host:4222?namespace=app); "
        f"pass a Transport object for others"
    )


def make_ruby_mirror(
    render: Render,
    apply_write: ApplyWrite,
    store: Store | None,
    *,
    ruby_compat: bool,
    ruby_namespace: str | None,
    poll_interval: float,
) -> RubyMirror | None:
    if not isinstance(ruby_compat, bool):
        raise TypeError(f"ruby_compat must be a bool, got {ruby_compat!r}")
    if not ruby_compat:
        if ruby_namespace is not None:
            raise ValueError("ruby_namespace only applies with ruby_compat=True")
        return None
    from ..redis._ruby_mirror import RubyMirror
    from ..redis._store import RedisStore

    if not isinstance(store, RedisStore):
        raise ValueError(f"ruby_compat=True needs a Redis store, got {store!r}")
    # Not started: the Rollout starts it once everything else is up.
    return RubyMirror(
        render,
        apply_write,
        store.client,
        namespace=store.namespace,
        ruby_namespace=ruby_namespace,
        poll_interval=poll_interval,
    )
