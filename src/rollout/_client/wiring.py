"""How ``Rollout``'s constructor arguments become a transport and a Ruby mirror.

Kept out of the facade: these import their optional parts (asyncio, redis-py) only when asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..redis._ruby_mirror import ApplyWrite, Render, RubyMirror
    from ..stores._base import Store
    from ..sync._base import Transport

__all__ = ["make_ruby_mirror", "make_transport"]


def make_transport(
    transport: Transport | None,
    listen: str | None,
    peers: Iterable[str],
    **options: Any,
) -> Transport | None:
    if transport is not None:
        if listen is not None or peers:
            raise ValueError("pass either transport= or listen=/peers=, not both")
        return transport
    if listen is None and not peers:
        return None
    # Imported here: asyncio and the protocol load only when replication is asked for.
    from ..peer._transport import PeerTransport

    return PeerTransport(listen=listen, peers=peers, **options)


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
    mirror = RubyMirror(
        render,
        apply_write,
        store.client,
        namespace=store.namespace,
        ruby_namespace=ruby_namespace,
        poll_interval=poll_interval,
    )
    mirror.start()
    return mirror
