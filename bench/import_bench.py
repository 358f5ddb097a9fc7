"""What ``import rollout`` costs a process that starts: time above the bare interpreter, modules.

Each figure is a fresh child process of this interpreter, timed from spawn to exit, best of
``RUNS`` (the machine is shared, so the fastest run is the one least disturbed):

* ``python -c pass``: the bare interpreter, the in-run baseline every other row is compared to;
* ``python -c "import rollout"``;
* ``python -c "import rollout; rollout.Rollout()"``: a Rollout in memory, no store, no
  transport; the target (at most ``TARGET_MS`` above the bare interpreter) applies to this row.

The three commands take turns in every round, so a busy moment slows all of them alike. The
children find the ``rollout`` this process would import, and run with compiled bytecode in a
cache of their own (``PYTHONPYCACHEPREFIX``, filled by a first untimed run), as an installed
package has it: a process that must compile the sources first (``PYTHONDONTWRITEBYTECODE``)
pays about as much again. Module counts are ``len(sys.modules)`` at exit. Beside the wall time,
the CPU time the child used (user + system, best of the same runs): on a machine shared with
other work it moves less than the wall time, which also counts the time spent waiting for a
core. The target is judged on the wall time. Run alone: ``python -m bench.import_bench``.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._timing import QUICK
from .report import Table

__all__ = ["ImportTimes", "measure_imports", "tables"]

#: The target of issue 15: ``import rollout; rollout.Rollout()`` adds at most this much.
TARGET_MS = 25.0
#: Runs of each command (best kept): ``BENCH_IMPORT_RUNS``, else 10 in a quick run (make
#: bench-quick, about 2 s), 30 in a full one.
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "10" if QUICK else "30"))

BARE = "pass"
IMPORT = "import rollout"
CONSTRUCT = "import rollout; rollout.Rollout()"
COMMANDS = (BARE, IMPORT, CONSTRUCT)

#: What a child prints after running its command: how many modules it holds, rollout's among them.
_COUNT = (
    "; import sys; print(len(sys.modules), "
    "sum(m == 'rollout' or m.startswith('rollout.') for m in sys.modules))"
)


@dataclass(frozen=True)
class ImportTimes:
    #: Command -> best wall time of a child process, in ms.
    best_ms: dict[str, float]
    #: Command -> best CPU time (user + system) of a child process, in ms.
    best_cpu_ms: dict[str, float]
    #: Command -> (modules, rollout's modules) loaded when it finished.
    modules: dict[str, tuple[int, int]]
    runs: int

    def above_bare(self, command: str) -> float:
        return self.best_ms[command] - self.best_ms[BARE]

    def cpu_above_bare(self, command: str) -> float:
        return self.best_cpu_ms[command] - self.best_cpu_ms[BARE]


def _child_env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    spec = importlib.util.find_spec("rollout")
    if spec is None or spec.origin is None:
        raise SystemExit("bench.import_bench: rollout is not importable here")
    source = str(Path(spec.origin).parent.parent)  # the directory that holds the package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _run(command: str, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU time of one child running ``command``, in ms, and what it printed."""
    cpu = _cpu_of_children()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # a failure is reported with the child's stderr, below
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench.import_bench: {command!r} failed:\n{result.stderr}")
    return elapsed * 1000, _cpu_of_children() - cpu, result.stdout


def measure_imports(runs: int = RUNS) -> ImportTimes:
    with tempfile.TemporaryDirectory(prefix="rollout-bench-pycache-") as cache:
        env = _child_env(cache)
        modules: dict[str, tuple[int, int]] = {}
        for command in COMMANDS:  # untimed: compiles the bytecode and counts the modules
            *_, out = _run(command + _COUNT, env)
            total, ours = out.split()
            modules[command] = (int(total), int(ours))
        best = dict.fromkeys(COMMANDS, float("inf"))
        best_cpu = dict.fromkeys(COMMANDS, float("inf"))
        for _ in range(runs):
            for command in COMMANDS:
                wall, cpu, _ = _run(command, env)
                best[command] = min(best[command], wall)
                best_cpu[command] = min(best_cpu[command], cpu)
    return ImportTimes(best_ms=best, best_cpu_ms=best_cpu, modules=modules, runs=runs)


def import_table(times: ImportTimes) -> Table:
    bare_modules = times.modules[BARE][0]
    rows = []
    for command in COMMANDS:
        total, ours = times.modules[command]
        above = "" if command == BARE else f"+{times.above_bare(command):.1f}"
        cpu_above = "" if command == BARE else f"+{times.cpu_above_bare(command):.1f}"
        target = ""
        if command == CONSTRUCT:
            verdict = "PASS" if times.above_bare(command) <= TARGET_MS else "MISS"
            target = f"<= {TARGET_MS:g} ms: {verdict}"
        rows.append(
            [
                f"python -c {command!r}",
                f"{times.best_ms[command]:.1f}",
                above,
                f"{times.best_cpu_ms[command]:.1f}",
                cpu_above,
                str(total),
                f"+{total - bare_modules}",
                str(ours),
                target,
            ]
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return Table(
        title="Import",
        headers=[
            "child process",
            "ms (best)",
            "ms above bare",
            "CPU ms",
            "CPU above bare",
            "modules",
            "above bare",
            "rollout's",
            "target",
        ],
        rows=rows,
        notes=(
            f"Fresh processes, best of {times.runs} runs each, taking turns; bytecode compiled "
            f"beforehand (as installed). Load average after the run: {load}.",
            "The target applies to the time `import rollout; rollout.Rollout()` adds to the bare "
            "interpreter (a Rollout in memory: no store, no transport).",
        ),
    )


def tables() -> list[Table]:
    return [import_table(measure_imports())]


if __name__ == "__main__":
    print(f"measuring imports ({RUNS} runs)...", file=sys.stderr, flush=True)
    for table in tables():
        print(table.text())
