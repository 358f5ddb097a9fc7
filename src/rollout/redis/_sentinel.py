"""A client of the master a Redis Sentinel names, from a ``redis+sentinel://`` URL's parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    import redis

__all__ = ["sentinel_client"]


def sentinel_client(parts: Any, timeout: float) -> tuple[redis.Redis, list[redis.Redis]]:
    """The master's client, and the Sentinels' connections (the caller closes them), each
    waiting at most ``timeout`` seconds for a connection or an answer."""
    from redis.sentinel import Sentinel

    hosts = []
    for host_port in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = host_port.rpartition(":")
        hosts.append((host or host_port, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a sentinel URL names the service: redis+sentinel://host:26379/mymaster")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    # The socket options apply to the master's connections and to the Sentinels' alike.
    sentinel = Sentinel(hosts, socket_timeout=timeout, socket_connect_timeout=timeout)
    # The URL's credentials are the master's (requirepass / ACL user): redis-py passes
    # connection arguments to the master, not to the Sentinels, which usually need none.
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    client: redis.Redis = sentinel.master_for(service, db=db, username=username, password=password)
    return client, list(sentinel.sentinels)
