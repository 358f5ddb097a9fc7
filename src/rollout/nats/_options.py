"""The NATS transport's options, checked before anything connects, and nats-py's connect
arguments built from them.

Credentials (a password or token in a server URL or given apart, a credentials file, an NKey
seed) go to nats-py and nowhere else: errors, logs, ``repr`` and ``stats()`` show servers
through :func:`rollout._core.redact.redact_url` and never the other secrets.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._core.redact import redact_url
from ._wire import check_namespace

__all__ = ["NatsOptions", "from_url"]

_SCHEMES = ("nats", "tls", "ws", "wss")
#: A message's headers and subject beside its body: room kept under the server's max_payload.
HEADER_ROOM = 1024


@dataclass(frozen=True)
class NatsOptions:
    servers: tuple[str, ...]
    namespace: str = "default"
    check_interval: float = 5.0
    compact_after: int = 100
    max_message_bytes: int = 512 * 1024
    stream_replicas: int = 1
    connect_timeout: float = 2.0
    max_pending: int = 65536
    #: Passed to nats.connect as they are: user, password, token, user_credentials, nkeys_seed,
    #: tls, tls_hostname, name. Not shown by repr (it holds the secrets).
    connect: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shown_servers(self) -> list[str]:
        return [redact_url(server) for server in self.servers]


def check_servers(servers: object) -> tuple[str, ...]:
    if isinstance(servers, str):
        servers = [part.strip() for part in servers.split(",")]
    if not isinstance(servers, Iterable):
        raise TypeError(f"servers must be a URL or a list of URLs, got {type(servers).__name__}")
    checked: list[str] = []
    for server in servers:
        if not isinstance(server, str):
            raise TypeError(f"servers must hold URL strings, got {type(server).__name__}")
        scheme = server.partition("://")[0].lower() if "://" in server else ""
        if scheme not in _SCHEMES:
            raise ValueError(
                f"servers: {redact_url(server)!r} is not a NATS URL "
                f"(nats://host:4222, tls://, ws:// or wss://)"
            )
        checked.append(server)
    if not checked:
        raise ValueError("servers must name at least one NATS server")
    return tuple(checked)


def _positive(name: str, value: object, kind: type = float) -> Any:
    number_types = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, number_types):
        raise TypeError(
            f"{name} must be a positive {'number' if kind is float else 'int'}, got {value!r}"
        )
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return value


def build(
    servers: object,
    *,
    namespace: object,
    user: str | None,
    password: str | None,
    token: str | None,
    credentials: str | os.PathLike[str] | None,
    nkeys_seed: str | os.PathLike[str] | None,
    tls: ssl.SSLContext | None,
    tls_hostname: str | None,
    name: str | None,
    check_interval: float,
    compact_after: int,
    max_message_bytes: int,
    stream_replicas: int,
    connect_timeout: float,
    max_pending: int,
) -> NatsOptions:
    checked = check_servers(servers)
    if tls is not None and not isinstance(tls, ssl.SSLContext):
        raise TypeError(f"tls must be an ssl.SSLContext, got {type(tls).__name__}")
    connect: dict[str, Any] = {}
    for argument, value in (("user", user), ("password", password), ("token", token)):
        if value is not None and not isinstance(value, str):
            # The value itself is not shown: it may be a secret.
            raise TypeError(f"{argument} must be a str, got {type(value).__name__}")
    for argument, value in (("tls_hostname", tls_hostname), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{argument} must be a str, got {value!r}")
    if password is not None and user is None:
        raise ValueError("password needs user")
    for argument, path in (("credentials", credentials), ("nkeys_seed", nkeys_seed)):
        if path is not None:
            if not isinstance(path, str | os.PathLike):
                raise TypeError(f"{argument} must be a file path, got {type(path).__name__}")
            if not os.path.isfile(path):
                raise ValueError(f"{argument}: no such file {os.fspath(path)!r}")
    extra = {
        "user": user,
        "password": password,
        "token": token,
        "user_credentials": os.fspath(credentials) if credentials is not None else None,
        "nkeys_seed": os.fspath(nkeys_seed) if nkeys_seed is not None else None,
        "tls": tls,
        "tls_hostname": tls_hostname,
        "name": name,
    }
    connect.update({key: value for key, value in extra.items() if value is not None})
    if _positive("max_message_bytes", max_message_bytes, int) < 4096:
        raise ValueError(f"max_message_bytes must be at least 4096, got {max_message_bytes!r}")
    return NatsOptions(
        servers=checked,
        namespace=check_namespace(namespace),
        check_interval=_positive("check_interval", check_interval),
        compact_after=_positive("compact_after", compact_after, int),
        max_message_bytes=_positive("max_message_bytes", max_message_bytes, int),
        stream_replicas=_positive("stream_replicas", stream_replicas, int),
        connect_timeout=_positive("connect_timeout", connect_timeout),
        max_pending=_positive("max_pending", max_pending, int),
        connect=connect,
    )


def from_url(url: str) -> tuple[str, dict[str, str]]:
    """``nats://host:4222?namespace=app`` → the server URL(s) and the options of the query.

    Only ``namespace`` may be given in the query (an unknown parameter is refused, not
    ignored); comma-separated URLs name several servers of one cluster.
    """
    head, _mark, query = url.partition("?")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "namespace":
            raise ValueError(
                f"{redact_url(url)!r}: unknown parameter {key!r} (a NATS URL takes 'namespace'; "
                f"pass other options to rollout.nats.NatsTransport)"
            )
        options[key] = value
    for part in head.split(","):
        if not urlsplit(part.strip()).hostname:
            raise ValueError(f"{redact_url(url)!r} names no host")
    return head, options
