"""Run by ``bench.memory`` in a fresh interpreter, so the RSS it reports is this work's alone.

``python -m bench.memory_child build PATH``: write 1,000 flags and one flag listing 100,000
users to an SQLite file at PATH, then report the process's RSS.

``python -m bench.memory_child reopen PATH``: time ``Rollout("sqlite:///PATH")`` (loading
everything back into memory), then report the RSS.

Each prints one JSON object on its last line of output.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import psutil

from rollout import Rollout

FLAGS = 1_000
BIG_USERS = 100_000
BIG_FLAG = "big"


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_mb() -> float | None:
    """The highest RSS of this process so far (Linux VmHWM), or None where unknown.

    Not ``getrusage().ru_maxrss``: on Linux that survives fork and exec, so a child would
    report its parent's peak if that was higher.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # reported in kB
    except OSError:
        pass
    return None


def build(path: str) -> dict[str, Any]:
    before = _rss_mb()
    start = time.perf_counter()
    flags = Rollout(f"sqlite:///{path}")
    for i in range(FLAGS):
        name = f"flag-{i:04d}"
        flags.activate_percentage(name, i % 100)
        flags.activate_users(name, [i, i + 1])
        flags.set_feature_data(name, {"description": f"flag number {i}", "owner": "team-a"})
    flags.activate_users(BIG_FLAG, range(BIG_USERS))
    elapsed = time.perf_counter() - start
    after = _rss_mb()
    flags.close()
    return {"rss_before_mb": before, "rss_mb": after, "peak_mb": _peak_mb(), "seconds": elapsed}


def reopen(path: str) -> dict[str, Any]:
    before = _rss_mb()
    start = time.perf_counter()
    flags = Rollout(f"sqlite:///{path}")
    elapsed = time.perf_counter() - start
    after = _rss_mb()
    count = len(flags.features())
    if count != FLAGS + 1 or not flags.active(BIG_FLAG, BIG_USERS - 1):
        raise RuntimeError(f"reopened store holds {count} flags or lost the big flag's users")
    flags.close()
    return {"rss_before_mb": before, "rss_mb": after, "peak_mb": _peak_mb(), "seconds": elapsed}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("build", "reopen"):
        raise SystemExit("usage: python -m bench.memory_child build|reopen PATH")
    mode, path = argv
    result = build(path) if mode == "build" else reopen(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
