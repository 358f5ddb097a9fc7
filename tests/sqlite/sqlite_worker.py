"""A separate process for tests/stores/test_sqlite.py: ``python sqlite_worker.py COMMAND PATH ...``.

Commands (each prints ``ready`` on stdout once it is set up, then waits or works):

* ``writer PATH PROC GO_FILE USERS DATA_KEYS``: once GO_FILE exists, activate users
  ``PROC-0 .. PROC-(USERS-1)`` on flag ``f`` one write at a time, and set DATA_KEYS data keys
  ``PROC-k`` in between.
* ``write-and-exit PATH``: write a few things, then ``os._exit(0)`` without closing anything.
* ``pair PATH STOP_FILE``: rewrite flag ``pair`` to users ``a{n}``, ``b{n}`` (n = 0, 1, ...) until
  STOP_FILE exists; print the last n.
* ``lock PATH``: hold ``BEGIN EXCLUSIVE`` on the file until stdin is closed.

Every loop is bounded by ``_DEADLINE_S`` so a forgotten worker never outlives the test run by much.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

from rollout import Rollout

_DEADLINE_S = 60.0


def _url(path: str) -> str:
    return f"sqlite:///{path}"


def _ready() -> None:
    print("ready", flush=True)


def writer(path: str, proc: str, go_file: str, users: int, data_keys: int) -> None:
    flags = Rollout(_url(path))
    try:
        _ready()
        deadline = time.monotonic() + _DEADLINE_S
        while not Path(go_file).exists():
            if time.monotonic() > deadline:
                raise SystemExit("writer: never told to go")
            time.sleep(0.001)
        every = max(1, users // max(1, data_keys))
        written = 0
        for i in range(users):
            flags.activate_user("f", f"{proc}-{i}")
            if i % every == 0 and written < data_keys:
                flags.set_feature_data("f", {f"{proc}-{written}": i})
                written += 1
        for k in range(written, data_keys):
            flags.set_feature_data("f", {f"{proc}-{k}": -1})
    finally:
        flags.close()


def write_and_exit(path: str) -> None:
    flags = Rollout(_url(path))
    flags.activate_percentage("durable", 30)
    flags.set_feature_data("durable", {"owner": "child"})
    flags.activate_user("durable", "last-write")
    # No close, no flush, no interpreter shutdown: the write must already be committed.
    os._exit(0)


def pair(path: str, stop_file: str) -> None:
    flags = Rollout(_url(path))
    try:
        n = 0
        flags.set_users("pair", [f"a{n}", f"b{n}"])
        _ready()
        deadline = time.monotonic() + _DEADLINE_S
        while not Path(stop_file).exists() and time.monotonic() < deadline:
            n += 1
            flags.set_users("pair", [f"a{n}", f"b{n}"])
            # Each rewrite leaves two "no longer listed" registers behind; pace the writer so
            # the table (and every reader's load) stays small during the test.
            time.sleep(0.001)
        print(n, flush=True)
    finally:
        flags.close()


def lock(path: str) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        _ready()
        sys.stdin.read()  # until the test closes our stdin
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def main(argv: list[str]) -> None:
    command, path, *rest = argv
    if command == "writer":
        proc, go_file, users, data_keys = rest
        writer(path, proc, go_file, int(users), int(data_keys))
    elif command == "write-and-exit":
        write_and_exit(path)
    elif command == "pair":
        (stop_file,) = rest
        pair(path, stop_file)
    elif command == "lock":
        lock(path)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
