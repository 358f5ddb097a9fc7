"""Run by ``bench.state`` in a fresh interpreter, so the RSS and times it reports are this work's
alone. Each mode prints one JSON object on its last line of output.

``python -m bench.state_child build URL USERS EXPORT [CHUNK]``: open ``Rollout(URL)`` (an empty
store), write 1,000 small flags and one flag listing USERS users (``activate_users``, the public
bulk path, with every id at once, or CHUNK ids a call), time ``activate_user`` on that flag
against an empty flag, then time ``export()`` and write the document to the file EXPORT.

``python -m bench.state_child reopen URL USERS``: time ``Rollout(URL)`` on the store ``build``
filled, until it holds everything (it loads the whole store before returning), and check that
it does.

``python -m bench.state_child merge URL USERS EXPORT``: time ``merge()`` of the file EXPORT into
``Rollout(URL)`` on an empty store (what importing a backup or seeding a new store costs), and
check the result.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from rollout import Rollout

from .memory_child import _peak_mb, _rss_mb

FLAGS = 1_000
BIG_FLAG = "big"
WRITES = 200  # activate_user calls per repeat, on each of the two flags
REPEATS = 5


def _small_flags(flags: Rollout) -> None:
    for i in range(FLAGS):
        name = f"flag-{i:04d}"
        flags.activate_percentage(name, i % 100)
        flags.activate_users(name, [i, i + 1])
        flags.set_feature_data(name, {"description": f"flag number {i}", "owner": "team-a"})


def _write_latency(flags: Rollout, users: int) -> tuple[float, float]:
    """Microseconds per ``activate_user``: (on an empty flag, on the big flag), best repeat.

    Interleaved, so a slow moment of the shared machine hits both sides alike; every repeat
    writes to a new empty flag and adds ids never listed before.
    """
    fresh = iter(range(10 * users + 10, 10**12))
    empty: list[float] = []
    big: list[float] = []

    def timed(name: str) -> float:
        ids = [next(fresh) for _ in range(WRITES)]
        activate_user = flags.activate_user
        gc.disable()
        try:
            start = time.perf_counter()
            for user in ids:
                activate_user(name, user)
            return (time.perf_counter() - start) / WRITES * 1e6
        finally:
            gc.enable()

    for repeat in range(REPEATS):
        name = f"empty-{repeat}"
        flags.activate_user(name, 0)  # exists, and its first write's setup is not timed
        big.append(timed(BIG_FLAG))
        empty.append(timed(name))
    return min(empty), min(big)


def _check(flags: Rollout, users: int) -> None:
    count = len(flags.features())
    if count < FLAGS + 1 or not flags.active(BIG_FLAG, users - 1):
        raise RuntimeError(f"the store holds {count} flags or lost the big flag's users")


def build(url: str, users: int, export_path: str, chunk: int = 0) -> dict[str, Any]:
    before = _rss_mb()
    flags = Rollout(url)
    start = time.perf_counter()
    _small_flags(flags)
    small_s = time.perf_counter() - start
    start = time.perf_counter()
    for first in range(0, users, chunk or users):
        flags.activate_users(BIG_FLAG, range(first, min(users, first + (chunk or users))))
    fill_s = time.perf_counter() - start
    gc.collect()
    rss = _rss_mb()
    empty_us, big_us = _write_latency(flags, users)
    start = time.perf_counter()
    document = flags.export()
    export_s = time.perf_counter() - start
    Path(export_path).write_bytes(document)
    flags.close()
    return {
        "rss_before_mb": before,
        "rss_mb": rss,
        "peak_mb": _peak_mb(),
        "small_s": small_s,
        "fill_s": fill_s,
        "empty_us": empty_us,
        "big_us": big_us,
        "export_s": export_s,
        "export_mb": len(document) / 2**20,
    }


def reopen(url: str, users: int) -> dict[str, Any]:
    before = _rss_mb()
    start = time.perf_counter()
    flags = Rollout(url)
    seconds = time.perf_counter() - start
    _check(flags, users)
    gc.collect()
    rss = _rss_mb()
    flags.close()
    return {"rss_before_mb": before, "rss_mb": rss, "peak_mb": _peak_mb(), "seconds": seconds}


def merge(url: str, users: int, export_path: str) -> dict[str, Any]:
    document = Path(export_path).read_bytes()
    before = _rss_mb()
    flags = Rollout(url)
    start = time.perf_counter()
    flags.merge(document)
    seconds = time.perf_counter() - start
    _check(flags, users)
    del document
    gc.collect()
    rss = _rss_mb()
    flags.close()
    return {"rss_before_mb": before, "rss_mb": rss, "peak_mb": _peak_mb(), "seconds": seconds}


def main(argv: list[str]) -> None:
    usage = "usage: python -m bench.state_child build|reopen|merge URL USERS [EXPORT [CHUNK]]"
    if len(argv) < 3 or argv[0] not in ("build", "reopen", "merge"):
        raise SystemExit(usage)
    mode, url, users = argv[0], argv[1], int(argv[2])
    if mode == "reopen":
        result = reopen(url, users)
    elif mode == "build" and len(argv) in (4, 5):
        result = build(url, users, argv[3], int(argv[4]) if len(argv) == 5 else 0)
    elif mode == "merge" and len(argv) == 4:
        result = merge(url, users, argv[3])
    else:
        raise SystemExit(usage)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
