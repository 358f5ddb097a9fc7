"""A separate process for tests/postgres/test_postgres_processes.py:
``python pg_worker.py COMMAND URL ...``.

Commands (each prints ``ready`` on stdout once set up, then works):

* ``writer URL PROC GO_FILE USERS``: once GO_FILE exists, activate users ``PROC-0`` ..
  ``PROC-(USERS-1)`` on flag ``f``, one write at a time.
* ``write-and-exit URL``: write a few things, then ``os._exit(0)`` without closing anything.
* ``export URL``: print the store's flags as this process loads them (JSON), and exit.
* ``watch URL COUNT``: print ``seen`` once users ``u-0`` .. ``u-(COUNT-1)`` of flag ``w`` are
  active here (it learns them only through the transport: it never reloads by itself).

Every wait is bounded by ``_DEADLINE_S`` so a forgotten worker never outlives the run by much.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rollout import Rollout

_DEADLINE_S = 60.0


def _ready() -> None:
    print("ready", flush=True)


def writer(url: str, proc: str, go_file: str, users: int) -> None:
    with Rollout(url) as flags:
        _ready()
        deadline = time.monotonic() + _DEADLINE_S
        while not Path(go_file).exists():
            if time.monotonic() > deadline:
                raise SystemExit("writer: never told to go")
            time.sleep(0.001)
        for i in range(users):
            flags.activate_user("f", f"{proc}-{i}")


def write_and_exit(url: str) -> None:
    flags = Rollout(url)
    _ready()
    flags.activate_user("chat", "from-the-child")
    flags.set_feature_data("chat", {"owner": "child"})
    flags.activate_percentage("beta", 25)
    sys.stdout.flush()
    os._exit(0)  # no close(), no atexit: as a process that is killed


def export(url: str) -> None:
    with Rollout(url) as flags:
        _ready()
        print(json.dumps(json.loads(flags.export())["flags"], sort_keys=True), flush=True)


def watch(url: str, count: int) -> None:
    with Rollout(url) as flags:
        if not flags.wait_synced(_DEADLINE_S):
            raise SystemExit("watch: never listening")
        _ready()
        deadline = time.monotonic() + _DEADLINE_S
        while not all(flags.active("w", f"u-{i}") for i in range(count)):
            if time.monotonic() > deadline:
                raise SystemExit(f"watch: not all {count} users arrived: {flags.stats()['sync']}")
            time.sleep(0.01)
        print("seen", flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "writer":
        writer(args[0], args[1], args[2], int(args[3]))
    elif command == "write-and-exit":
        write_and_exit(args[0])
    elif command == "export":
        export(args[0])
    elif command == "watch":
        watch(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
