"""FaultProxy and LinkTable, over real loopback sockets with an echo server behind them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from rollout.testing import eventually
from rollout.testing.proxy import FaultProxy, LinkTable

WAIT = 20.0  # upper bound on every wait: only a stalled machine comes near it


def _proxy_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rollout-proxy")]


class EchoServer:
    """Echoes every byte back; a thread per connection, all closed by close()."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads.append(threading.Thread(target=self._accept, daemon=True))
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.05)
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(WAIT)
        self._listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.address) as p:
        yield p


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    yield
    assert _proxy_threads() == []


def _connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def _roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _sees_close(sock: socket.socket) -> bool:
    """True if the peer closed (EOF or reset) within WAIT."""
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return True


def _echoes(address: str) -> bool:
    """Whether a fresh connection through `address` echoes; False if it gets closed."""
    with _connect(address) as sock:
        try:
            return _roundtrip(sock, b"ping") == b"ping"
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return False


def test_forwards_both_ways_and_counts(proxy: FaultProxy) -> None:
    assert proxy.address.startswith("127.0.0.1:")
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock, b"hello") == b"hello"
        assert _roundtrip(sock, b"x" * 100_000) == b"x" * 100_000
        eventually(lambda: proxy.connections == 1, what="one connection open")
    eventually(lambda: proxy.bytes_forwarded == 2 * 100_005, what="every byte counted")
    eventually(lambda: proxy.connections == 0, what="the connection gone")


def test_cut_closes_connections_and_refuses_new_ones_until_heal(proxy: FaultProxy) -> None:
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock, b"before") == b"before"
        proxy.cut()
        assert _sees_close(sock)
    eventually(lambda: proxy.connections == 0, what="the cut connection gone")
    with _connect(proxy.address) as sock:
        assert _sees_close(sock)
    assert not _echoes(proxy.address)
    proxy.heal()
    assert _echoes(proxy.address)


def test_blackhole_keeps_connection_but_drops_bytes_until_heal(proxy: FaultProxy) -> None:
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock, b"one") == b"one"
        proxy.blackhole()
        sock.sendall(b"lost")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        assert proxy.connections == 1
        proxy.heal()
        sock.settimeout(WAIT)
        assert _roundtrip(sock, b"back") == b"back"  # not b"lostback": dropped means dropped


def test_delay_adds_latency(proxy: FaultProxy) -> None:
    with _connect(proxy.address) as sock:
        proxy.delay(0.2)
        started = time.monotonic()
        assert _roundtrip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.2
        proxy.delay(0)
        assert _roundtrip(sock, b"fast") == b"fast"
    with pytest.raises(ValueError, match="delay"):
        proxy.delay(-1)


def test_close_is_idempotent_and_stops_every_thread(echo: EchoServer) -> None:
    proxy = FaultProxy(echo.address).start()
    with _connect(proxy.address) as sock:
        assert _roundtrip(sock, b"hi") == b"hi"
        assert any(name.endswith("-down") for name in _proxy_threads())
        proxy.close()  # a close that hangs fails by the test's time-out, not a stopwatch
        assert _proxy_threads() == []
        assert proxy.connections == 0
        assert _sees_close(sock)
    proxy.close()
    with pytest.raises(RuntimeError):
        proxy.start()


def test_unreachable_target_closes_the_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as spare:
        dead = f"127.0.0.1:{spare.getsockname()[1]}"
    with FaultProxy(dead) as proxy, _connect(proxy.address) as sock:
        assert _sees_close(sock)


def test_bad_target_and_unstarted_address_are_errors() -> None:
    with pytest.raises(ValueError, match="host:port"):
        FaultProxy("nope")
    with pytest.raises(RuntimeError):
        _ = FaultProxy("127.0.0.1:1").address


def test_link_table_partitions_exactly_the_cross_group_links() -> None:
    servers = {name: EchoServer() for name in "abc"}
    try:
        with LinkTable({name: s.address for name, s in servers.items()}) as links:
            pairs = [(a, b) for a in "abc" for b in "abc" if a != b]
            assert len({links.address(a, b) for a, b in pairs}) == 6
            assert links.peers("a") == {"b": links.address("a", "b"), "c": links.address("a", "c")}
            assert all(_echoes(links.address(a, b)) for a, b in pairs)

            links.partition(["a"], iter(["b", "c"]))
            for a, b in pairs:
                assert _echoes(links.address(a, b)) == ("a" not in (a, b)), (a, b)

            links.heal_all()
            assert all(_echoes(links.address(a, b)) for a, b in pairs)

            with pytest.raises(ValueError, match="both sides"):
                links.partition(["a"], ["a", "b"])
            with pytest.raises(KeyError):
                links.partition(["a"], ["z"])
            with pytest.raises(KeyError):
                links.address("a", "a")
    finally:
        for server in servers.values():
            server.close()
