"""A fault-injecting TCP proxy, for tests of the peer-to-peer cluster.

Replication has to survive partitions, slow links and links that swallow bytes, and the only
honest way to test that is with real sockets. Put a :class:`FaultProxy` in front of a node's
listening port, give its address to the other nodes, and the test can then ``cut()``,
``blackhole()``, ``delay()`` and ``heal()`` that link while the cluster runs::

    with FaultProxy("127.0.0.1:7001") as proxy:
        node_b = start_node(peers=[proxy.address])
        proxy.cut()       # node_b can no longer reach the node on 7001
        proxy.heal()

:class:`LinkTable` does this for a whole cluster: one proxy per ordered pair of nodes, so any
link can fail in one direction or both, and ``partition()`` splits the cluster in two.

Standard library only, and it runs on its own threads (never on the caller's event loop), so it
works the same under sync and asyncio tests.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterable, Mapping

__all__ = ["FaultProxy", "LinkTable"]

#: How often blocked threads look up to see whether they should stop (bounds close() latency).
_POLL = 0.05
#: Connecting upstream happens on loopback, so a slow connect means the target is gone.
_CONNECT_TIMEOUT = 1.0
#: close() waits this long, in total, for the proxy's threads.
_JOIN_TIMEOUT = 2.0
_CHUNK = 65536


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"expected 'host:port', got {address!r}")
    return host, int(port)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class FaultProxy:
    """Listens on 127.0.0.1:<free port> and forwards every accepted connection to `target`.

    Faults apply to the whole proxy, that is to one direction of reachability between two
    nodes: ``cut()`` is a partition the nodes notice (connections drop, reconnects fail),
    ``blackhole()`` one they do not (connections stay up, bytes vanish), which is the case
    that exercises timeouts. ``heal()`` undoes both.
    """

    def __init__(
        self, target: str, *, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self._target = _split(target)
        self._listen = (listen_host, listen_port)
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._numbers = itertools.count(1)
        self._closing = threading.Event()
        self._closed = False
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._port = 0
        self._cut = False
        self._blackholed = False
        self._delay = 0.0
        self._bytes = 0

    def start(self) -> FaultProxy:
        """Bind and start accepting; returns self so ``FaultProxy(t).start()`` reads as one step."""
        with self._lock:
            if self._listener is not None or self._closed:
                raise RuntimeError("a FaultProxy starts once")
            host, port = self._listen
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, port), family=family)
            listener.settimeout(_POLL)
            self._listener = listener
            self._port = listener.getsockname()[1]
            self._accept_thread = threading.Thread(
                target=self._accept_loop, args=(listener,), name=f"{self._name}-accept", daemon=True
            )
            self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop listening, drop every connection and wait (about 2 s at most) for the threads.

        Idempotent, so it is safe in ``finally`` blocks and fixture teardown alike.
        """
        links = self._begin_close()
        self._finish_close(links, time.monotonic() + _JOIN_TIMEOUT)

    def __enter__(self) -> FaultProxy:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin_close(self) -> list[_Link]:
        # Split from _finish_close so that LinkTable can signal every proxy before waiting on
        # any: closing them one by one would cost a poll interval each.
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            self._closing.set()
            links = list(self._links)
        for link in links:
            link.abort()
        return links

    def _finish_close(self, links: list[_Link], deadline: float) -> None:
        thread = self._accept_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
        for link in links:
            link.thread.join(max(0.0, deadline - time.monotonic()))

    def cut(self) -> None:
        """Partition: close every open connection and refuse new ones until :meth:`heal`.

        New connections are accepted and closed at once (rather than left unaccepted) so that
        a reconnecting node sees the failure immediately instead of waiting for a timeout.
        """
        with self._lock:
            self._cut = True
            links = list(self._links)
        for link in links:
            link.abort()

    def blackhole(self) -> None:
        """Keep connections open but drop every byte, both ways, until :meth:`heal`.

        This is a network that swallows packets: nothing tells the nodes, so only their own
        timeouts and heartbeats can notice. Dropped bytes are gone for good, not delayed.
        """
        self._blackholed = True

    def heal(self) -> None:
        """Forward normally again: new connections are accepted, black-holed ones resume.

        Connections closed by :meth:`cut` stay closed; the nodes are expected to reconnect.
        The delay set by :meth:`delay` is a separate knob and is left as it is.
        """
        self._cut = False
        self._blackholed = False

    def delay(self, seconds: float) -> None:
        """Hold every forwarded chunk ``seconds`` after it was read (0 turns latency off).

        Chunks are read one at a time per direction, so a burst split into several chunks
        can wait a little longer than ``seconds``; tests should only bound it from below.
        """
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._delay = float(seconds)

    @property
    def address(self) -> str:
        """The ``host:port`` clients should dial instead of the target."""
        if not self._port:
            raise RuntimeError("start() the FaultProxy before asking for its address")
        return _join(self._listen[0], self._port)

    @property
    def connections(self) -> int:
        """Client connections currently open through the proxy."""
        with self._lock:
            return len(self._links)

    @property
    def bytes_forwarded(self) -> int:
        """Bytes delivered so far, both directions together (dropped bytes do not count)."""
        with self._lock:
            return self._bytes

    def __repr__(self) -> str:
        port = self._port or "unstarted"
        return f"<FaultProxy :{port} -> {_join(*self._target)}>"

    @property
    def _name(self) -> str:
        return f"rollout-proxy-{self._port}"

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                self._closing.wait(_POLL)  # e.g. out of file descriptors: back off, retry
                continue
            with self._lock:
                refuse = self._cut or self._closing.is_set()
                if not refuse:
                    link = _Link(self, client, f"{self._name}-c{next(self._numbers)}")
                    self._links.add(link)
                    link.thread.start()
            if refuse:
                client.close()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _deliver(
        self, data: bytes, dst: socket.socket, read_at: float, stop: threading.Event
    ) -> bool:
        """Pass one chunk on, applying the faults; False means the link should end."""
        if self._blackholed:
            return True
        remaining = read_at + self._delay - time.monotonic()
        if remaining > 0 and stop.wait(remaining):
            return False
        if self._blackholed:  # black-holed while the chunk was held back
            return True
        view = memoryview(data)
        while view:
            if stop.is_set():
                return False
            try:
                sent = dst.send(view)
            except TimeoutError:
                continue  # the receiver is slow; look at `stop` and try again
            except OSError:
                return False
            view = view[sent:]
            with self._lock:
                self._bytes += sent
        return True


class _Link:
    """One client connection and its upstream twin, pumped by two threads (one per direction).

    Two threads rather than one select loop so that a delayed chunk in one direction does not
    hold up the other, and so that half-closes pass through naturally.
    """

    def __init__(self, proxy: FaultProxy, client: socket.socket, name: str) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def abort(self) -> None:
        """End the link now; both ends see EOF. Safe from any thread, any number of times."""
        self._stop.set()
        with self._lock:
            if self._closed:
                return
            for sock in (self._client, self._upstream):
                if sock is not None:
                    # shutdown (not close) wakes the pumps without freeing a descriptor they use.
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            with self._lock:
                self._closed = True
                self._client.close()
                if self._upstream is not None:
                    self._upstream.close()
            self._proxy._forget(self)

    def _serve(self) -> None:
        try:
            upstream = socket.create_connection(self._proxy._target, timeout=_CONNECT_TIMEOUT)
        except OSError:
            return  # the target is down: the client sees its connection closed, as it should
        with self._lock:
            self._upstream = upstream
        if self._stop.is_set():  # aborted while connecting, before abort() could see upstream
            return
        for sock in (self._client, upstream):
            sock.settimeout(_POLL)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        down = threading.Thread(
            target=self._pump, args=(upstream, self._client), name=f"{self.thread.name}-down"
        )
        down.daemon = True
        down.start()
        self._pump(self._client, upstream)
        down.join()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = src.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                self.abort()  # a reset on one side resets the other
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)  # pass the half-close on
                return
            if not self._proxy._deliver(data, dst, time.monotonic(), self._stop):
                self.abort()
                return


class LinkTable:
    """One started :class:`FaultProxy` per ordered pair of nodes: ``address(a, b)`` is how a
    reaches b.

    Per-pair proxies, rather than one per node, let a test break a single link, or one
    direction of it, without touching the rest. The proxies start in the constructor because
    their addresses are needed to configure the nodes before any node runs.
    """

    def __init__(self, nodes: Mapping[str, str]) -> None:
        self._nodes = list(nodes)
        self._proxies: dict[tuple[str, str], FaultProxy] = {}
        try:
            for a in self._nodes:
                for b in self._nodes:
                    if a != b:
                        self._proxies[a, b] = FaultProxy(nodes[b]).start()
        except BaseException:
            self.close()
            raise

    def proxy(self, a: str, b: str) -> FaultProxy:
        """The proxy that carries a's connections to b, to inject faults on that one link."""
        try:
            return self._proxies[a, b]
        except KeyError:
            raise KeyError(f"no link {a!r} -> {b!r}") from None

    def address(self, a: str, b: str) -> str:
        """The address node a should use to reach node b."""
        return self.proxy(a, b).address

    def peers(self, a: str) -> dict[str, str]:
        """Node a's peer list: every other node's name mapped to a's address for it."""
        if a not in self._nodes:
            raise KeyError(f"unknown node {a!r}")
        return {b: self.address(a, b) for b in self._nodes if b != a}

    def partition(self, group1: Iterable[str], group2: Iterable[str]) -> None:
        """Cut both directions of every link between the two groups; links inside a group stay."""
        first, second = list(group1), list(group2)
        unknown = set(first + second) - set(self._nodes)
        if unknown:
            raise KeyError(f"unknown nodes {sorted(unknown)}")
        if set(first) & set(second):
            raise ValueError("a node cannot be on both sides of a partition")
        for a in first:
            for b in second:
                self._proxies[a, b].cut()
                self._proxies[b, a].cut()

    def heal_all(self) -> None:
        """Heal every link (cuts and black holes; delays are left as set)."""
        for proxy in self._proxies.values():
            proxy.heal()

    def close(self) -> None:
        """Close every proxy, signalling all first so the total wait stays about 2 s."""
        pending = [(proxy, proxy._begin_close()) for proxy in self._proxies.values()]
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for proxy, links in pending:
            proxy._finish_close(links, deadline)

    def __enter__(self) -> LinkTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
