"""A ``Rollout`` whose construction fails releases what it had made: nobody holds a half-made
Rollout to close it, so before this a store opened from a URL kept its file open, and a peer
transport its thread, until the garbage collector came (and Python 3.13 warns of the unclosed
SQLite connection). The garbage collector is kept out of these tests: what they check is what
the constructor itself leaves behind."""

from __future__ import annotations

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
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed already
        if target.startswith(str(path)):
            found.append(target)
    return found


def _sync_threads() -> int:
    return len([t for t in threading.enumerate() if t.name == "rollout-sync"])


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
    with pytest.raises(StoreError, match="no-such-key"):
        Rollout(f"sqlite:///{path}")
    assert _open_descriptors_of(path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd (Linux)")
def test_a_listen_address_in_use_leaves_no_thread_and_no_open_store(
    tmp_path: Path, no_collector: None
) -> None:
    path = tmp_path / "flags.db"
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    threads = _sync_threads()
    try:
        with pytest.raises(OSError, match="address already in use"):
            Rollout(f"sqlite:///{path}", listen=f"127.0.0.1:{port}", insecure=True)
    finally:
        taken.close()
    assert _sync_threads() == threads
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
