"""A ``Rollout`` whose construction fails releases what it had made: nobody holds a half-made
Rollout to close it, so before this a store opened from a URL kept its file open, and a peer
transport its thread, until the garbage collector came (and Python 3.13 warns of the unclosed
SQLite connection). The garbage collector is kept out of these tests: what they check is what
the constructor itself leaves behind."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.errors import StoreError


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _open_descriptors_of(path: Path) -> list[str]:
    """This process's file descriptors open on ``path`` (its -wal and -shm files too)."""
    real = os.path.realpath(path)  # what the descriptors' links name
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed already
        if target.startswith(real):
            found.append(target)
    return found


@contextlib.contextmanager
def _listening() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port: an address in use, or a peer to watch."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def _address_of(server: socket.socket) -> str:
    return f"127.0.0.1:{server.getsockname()[1]}"


def _sync_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "rollout-sync"}


def _damaged_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.db"
    with Rollout(f"sqlite:///{path}") as flags:
        flags.activate("chat")
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO registers (flag, key, wall, counter, node, value) VALUES "
            "('chat', 'no-such-key', 1, 0, 1, 'true')"
        )
    connection.close()
    return path


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
def test_a_store_that_fails_to_load_is_closed(tmp_path: Path, no_collector: None) -> None:
    path = _damaged_file(tmp_path)
    assert _open_descriptors_of(path) == []
    held = Rollout(f"sqlite:///{tmp_path / 'held.db'}")
    assert _open_descriptors_of(tmp_path / "held.db") != []  # the test sees an open store
    held.close()
    with pytest.raises(StoreError, match="no-such-key"):
        Rollout(f"sqlite:///{path}")
    assert _open_descriptors_of(path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
def test_a_listen_address_in_use_leaves_no_thread_and_no_open_store(
    tmp_path: Path, no_collector: None
) -> None:
    path = tmp_path / "flags.db"
    threads = _sync_threads()
    with _listening() as taken, pytest.raises(OSError, match="address already in use"):
        Rollout(f"sqlite:///{path}", listen=_address_of(taken), insecure=True)
    # The failed Rollout's own thread has ended (other tests' threads may end meanwhile too).
    assert [t for t in _sync_threads() - threads if t.is_alive()] == []
    assert _open_descriptors_of(path) == []


def test_a_store_passed_in_is_left_open_for_its_owner(tmp_path: Path) -> None:
    from rollout.sqlite import SQLiteStore

    path = _damaged_file(tmp_path)
    store = SQLiteStore(path)
    try:
        with pytest.raises(StoreError, match="no-such-key"):
            Rollout(store)
        # Still open for the code that opened it (Rollout closes only what it opened): it
        # answers with the damaged row again, not ClosedError.
        with pytest.raises(StoreError, match="no-such-key"):
            store.load()
    finally:
        store.close()


def test_a_mistake_in_the_arguments_dials_no_peer() -> None:
    # Checked before anything starts: before, the transport bound, dialled its peers and was
    # stopped again when the Ruby mirror's arguments were refused.
    with _listening() as peer:
        peer.settimeout(1.0)
        with pytest.raises(ValueError, match="ruby_namespace only applies with ruby_compat=True"):
            Rollout(peers=[_address_of(peer)], insecure=True, ruby_namespace="app")
        with pytest.raises(TimeoutError):
            peer.accept()[0].close()  # no connection came


def test_a_peer_transport_whose_start_failed_is_not_started_again_half_way() -> None:
    from rollout.errors import ClosedError
    from rollout.peer import PeerTransport

    with _listening() as taken:
        transport = PeerTransport(listen=_address_of(taken), insecure=True)
        with pytest.raises(OSError, match="address already in use"):
            Rollout(transport=transport)
    # Closed by the failed Rollout, as close() would: started again, it would have run without
    # its anti-entropy rounds (nothing new starts on a closing transport).
    with pytest.raises(ClosedError, match="a transport starts once"):
        Rollout(transport=transport)
