"""Live updates through NATS JetStream, for fleets of hundreds of processes.

The transport runs nats-py on an asyncio loop of its own thread (rollout.peer's LoopThread), so
the application need not be async; ``publish`` hands a change to that loop and returns at once.
The work on the loop is rollout.nats._session's; what goes on the wire is rollout.nats._wire's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from typing import Any

from ..errors import require_extra
from ..peer._loop import LoopThread, abandon
from ..sync._base import SyncHost, Transport
from . import _options
from ._outbox import Outbox
from ._session import Replicator
from ._wire import stream_name, subject_prefix

__all__ = ["NatsTransport"]


class NatsTransport(Transport):
    """Replicates through a JetStream stream on NATS.

    ``servers``: ``"nats://host:4222"`` (``tls://`` for TLS; a ``user:password@`` in the URL
    works), comma-separated or a list for a cluster. ``namespace``: the subjects
    ``rollout.<namespace>.f.*`` and the stream ``ROLLOUT_<namespace>``; two applications on one
    NATS use two namespaces. ``user``/``password``, ``token``, ``credentials`` (a ``.creds``
    file), ``nkeys_seed`` (a seed file), ``tls`` (an ``ssl.SSLContext``), ``tls_hostname`` and
    ``name`` go to ``nats.connect`` as they are. ``check_interval``: seconds between checks
    that nothing was missed. ``compact_after``: messages on a flag's subject before they are
    rolled up into one. ``max_message_bytes``: the largest message sent (larger changes are
    split; the server's ``max_payload`` lowers it). ``stream_replicas``: the stream's replicas
    in a NATS cluster, when this transport makes it. ``max_pending``: messages that may wait in
    this process to be merged; past it nats-py drops them, and the loss is found by the
    consumer sequence and resumed from the last merged message.
    """

    def __init__(
        self,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        namespace: str = "default",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        credentials: str | os.PathLike[str] | None = None,
        nkeys_seed: str | os.PathLike[str] | None = None,
        tls: ssl.SSLContext | None = None,
        tls_hostname: str | None = None,
        name: str | None = None,
        check_interval: float = 5.0,
        compact_after: int = 100,
        max_message_bytes: int = 512 * 1024,
        stream_replicas: int = 1,
        connect_timeout: float = 2.0,
        max_pending: int = 65536,
    ) -> None:
        require_extra("nats", "nats", "rollout.nats.NatsTransport")
        self.options = _options.build(
            servers,
            namespace=namespace,
            user=user,
            password=password,
            token=token,
            credentials=credentials,
            nkeys_seed=nkeys_seed,
            tls=tls,
            tls_hostname=tls_hostname,
            name=name,
            check_interval=check_interval,
            compact_after=compact_after,
            max_message_bytes=max_message_bytes,
            stream_replicas=stream_replicas,
            connect_timeout=connect_timeout,
            max_pending=max_pending,
        )
        self._host: SyncHost | None = None
        self._loop: LoopThread | None = None
        self._task: asyncio.Task[None] | None = None
        self._outbox = Outbox()
        self._replicator: Replicator | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> NatsTransport:
        """``NatsTransport.from_url("nats://host:4222?namespace=app")``: what
        ``Rollout(transport="nats://...")`` builds."""
        servers, query = _options.from_url(url)
        return cls(servers, **{**query, **options})

    @property
    def namespace(self) -> str:
        return self.options.namespace

    @property
    def stream(self) -> str:
        return stream_name(self.options.namespace)

    @property
    def subjects(self) -> str:
        return f"{subject_prefix(self.options.namespace)}.>"

    def start(self, host: SyncHost) -> None:
        self._host = host
        replicator = Replicator(self.options, host, self._outbox)
        self._replicator = replicator
        self._loop = LoopThread("rollout-nats")

        async def begin() -> asyncio.Task[None]:
            return asyncio.get_running_loop().create_task(replicator.run())

        self._task = self._loop.submit(begin()).result(timeout=10)

    def publish(self, delta: Any) -> None:
        """Hand a local write to the loop; never blocks on the network, never raises for it.

        While NATS is away the change waits (merged with later ones) and goes out after the
        reconnect; after ``close()`` it is dropped (the write is already local).
        """
        if self._loop is None:
            return
        self._outbox.put(delta)

    def wait_synced(self, timeout: float, peers: int | None = None) -> bool:
        # The stream holds every change acknowledged, and every replica reads it: there are no
        # peers to count. What is waited for: the stream acknowledged every local write so far,
        # and this replica has read the stream up to its end (it hears the others).
        del peers
        return self._outbox.wait_sent(timeout)

    def stats(self) -> dict[str, Any]:
        replicator = self._replicator
        counters = replicator.counters if replicator is not None else {}
        return {
            "transport": "nats",
            "servers": self.options.shown_servers,
            "stream": self.stream,
            "connected": self._outbox.connected,
            "stream_sequence": replicator.applied if replicator is not None else 0,
            "waiting": self._outbox.waiting,
            "last_error": replicator.last_error if replicator is not None else None,
            **counters,
        }

    def after_fork_in_child(self) -> None:
        # The parent's loop thread does not exist here; its objects are left alone (abandoned,
        # never closed: they hold the parent's sockets) and this child starts anew.
        if self._loop is not None and self._host is not None:
            abandon(self._loop)
            self._loop = None
            self._outbox = Outbox()
            self.start(self._host)

    def close(self, timeout: float = 5.0) -> None:
        loop, self._loop = self._loop, None
        task, self._task = self._task, None
        if loop is None:
            return
        self._outbox.set_connected(False)
        if loop.is_current:  # closed from a subscriber, on the loop itself: stop it soon
            if task is not None:
                loop.call_soon(task.cancel)
            loop.call_soon(loop.loop.stop)
            return

        async def finish() -> None:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):  # a wedged loop must not wedge close()
            loop.submit(finish()).result(timeout)
        loop.stop(max(0.1, deadline - time.monotonic()))

    def __repr__(self) -> str:
        return f"<NatsTransport {','.join(self.options.shown_servers)} stream={self.stream}>"
