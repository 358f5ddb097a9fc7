"""Memory: 1,000 flags plus one flag listing 100,000 users, in an SQLite file.

Both steps run in fresh interpreters (``bench.memory_child``), so the RSS measured is that of a
process doing only this: one writes the file, another reopens it (loading every flag back into
memory) and times that. RSS includes the interpreter itself; the "before" figure is the RSS of
the same process after importing rollout and psutil, before any flag exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryResults", "ProcessFigures", "measure_memory"]

_ROOT = Path(__file__).resolve().parent.parent  # where ``python -m bench...`` can import bench


@dataclass(frozen=True)
class ProcessFigures:
    rss_before_mb: float  # interpreter + imports, before any flag
    rss_mb: float  # after the work
    peak_mb: float | None  # the highest RSS the process reached (Linux VmHWM), if known
    seconds: float  # the work's wall time


@dataclass(frozen=True)
class MemoryResults:
    build: ProcessFigures
    reopen: ProcessFigures
    file_mb: float  # the SQLite database (with its WAL) on disk


def measure_memory() -> MemoryResults:
    with tempfile.TemporaryDirectory(prefix="rollout-bench-memory-") as tmp:
        path = Path(tmp) / "big.db"
        build = _child("build", path)
        file_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        reopen = _child("reopen", path)
    return MemoryResults(build, reopen, file_mb)


def _child(mode: str, path: Path) -> ProcessFigures:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.memory_child", mode, str(path)],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child {mode!r} failed:\n{completed.stderr}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return ProcessFigures(
        rss_before_mb=float(figures["rss_before_mb"]),
        rss_mb=float(figures["rss_mb"]),
        peak_mb=None if figures["peak_mb"] is None else float(figures["peak_mb"]),
        seconds=float(figures["seconds"]),
    )
