"""``rollout serve``'s HTTP side: the admin app under uvicorn, in this thread, until a signal.

The listening socket is bound before uvicorn starts (:func:`bind`), so a bad or busy address is
one clear error before anything runs, and port 0 works (the printed address has the real port).
uvicorn then serves the app on that socket; SIGINT or SIGTERM stops it gracefully (open
connections such as a dashboard's event stream get :data:`GRACE` seconds), the check sampler is
stopped (the original ``flags.active`` is put back), and the caller closes the Rollout.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from ._code_threads import CODE_TIMEOUT
from ._connections import ConnectionGuard, guarded
from ._events import MAX_STREAMS
from ._limits import (
    accept_batch,
    connection_cap,
    quiet_accept_errors,
    quiet_invalid_requests,
    raise_descriptor_limit,
)
from ._metrics import stop_sampling

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = ["GRACE", "bind", "serve", "url_of"]

#: Seconds open connections (event streams) get to finish after a stop signal.
GRACE = 3

#: Connections the kernel queues for accept.
BACKLOG = 1024

logger = logging.getLogger("rollout")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host is an IPv6 address).

    Raises ``OSError`` naming the address when it cannot be bound (in use, not an address of
    this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not socket.create_server's 0: asyncio turns on TCP_NODELAY only for
    # accepted sockets whose proto says TCP. Without it Nagle's algorithm holds each response's
    # body until the client's delayed ACK of its headers: 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise OSError(exc.errno, f"cannot listen on {shown} for HTTP: {exc.strerror}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (the real port when it was bound to port 0)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class _Server(uvicorn.Server):
    """uvicorn's server, telling the caller once it accepts requests (the app has started)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        quiet_accept_errors(asyncio.get_running_loop())
        await super().startup(sockets=sockets)
        # asyncio listens with its backlog, which is also how many it accepts in one go (kept
        # small, see accept_batch); the kernel's queue of waiting connections stays long.
        for sock in sockets or []:
            sock.listen(BACKLOG)
        if self.started:
            self._on_ready()


def serve(
    flags: Rollout,
    sock: socket.socket,
    *,
    tokens: Mapping[str, str] | None,
    session_secret: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    access_log: bool = True,
    on_ready: Callable[[], None] = lambda: None,
    max_connections: int | None = None,
    forwarded_allow_ips: str | None = None,
    require_reason: bool = False,
    code_timeout: float | None = None,
    **access: Any,
) -> int:
    """Serve ``rollout.admin.create_app(flags, tokens=...)`` on ``sock`` until SIGINT/SIGTERM.

    Runs in the calling (main) thread. Returns 0 after a signal, 1 when the app failed to start
    (uvicorn has logged why). Does not close ``flags``: the caller owns it.

    Raises the process's soft descriptor limit as far as allowed and holds at most
    ``max_connections`` connections (default: what that limit leaves room for), closing
    requests that do not arrive in time (see ``_connections``).

    A client's address (which the guessing throttle counts by) is the TCP peer's, unless the
    connection comes from one of ``forwarded_allow_ips`` (comma-separated addresses or networks,
    ``*`` for any: the reverse proxies in front), whose ``X-Forwarded-For`` then names it.
    uvicorn's own default trusts the header from 127.0.0.1, but what connects from loopback is
    not always a proxy that sets it: behind a TCP-level one (stunnel, an SSH tunnel, ``kubectl
    port-forward``) every client could pick its own address, and so its own throttle.
    ``code_timeout`` (seconds, default ``create_app``'s) bounds a read that runs the
    application's code (a hung predicate would otherwise hold its connection for ever).
    ``access`` (``scopes``, ``token_flags``, ``cors_origins``) goes on to ``create_app``.
    """
    from . import create_app

    limit = raise_descriptor_limit()
    cap = max_connections if max_connections is not None else connection_cap(limit)
    guard = ConnectionGuard(cap)
    logger.info("holding at most %d HTTP connections (open file limit %s)", cap, limit)
    if forwarded_allow_ips is not None:
        logger.info(
            "client addresses are taken from X-Forwarded-For on connections from %s",
            forwarded_allow_ips,
        )
    app = create_app(
        flags,
        tokens=dict(tokens) if tokens else None,
        session_secret=session_secret,
        allowed_hosts=list(allowed_hosts) if allowed_hosts else None,
        # Streams are never evicted for room: half the connections at most, so that the rest
        # always serve requests.
        max_event_streams=max(1, min(MAX_STREAMS, cap // 2)),
        require_reason=require_reason,
        code_timeout=CODE_TIMEOUT if code_timeout is None else code_timeout,
        **access,
    )
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # keep the process's own logging format for uvicorn's lines
        access_log=access_log,
        timeout_graceful_shutdown=GRACE,
        http=guarded(guard),
        backlog=accept_batch(limit, cap),
        ws="none",  # the dashboard uses server-sent events, not websockets
        server_header=False,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )
    server = _Server(config, on_ready)

    def stop(_signal: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    # uvicorn swaps in its own handlers while it runs and, once stopped, restores these and
    # raises the signal again: with Python's defaults that second SIGTERM would kill the
    # process (status -15) after the clean shutdown. Ours makes it a no-op, and covers a signal
    # that arrives before uvicorn installs its handlers.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    quiet = quiet_invalid_requests()
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's way of saying the app's start-up failed
        return 1
    finally:
        logging.getLogger("uvicorn.error").removeFilter(quiet)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_sampling(flags)
        sock.close()
    return 0
