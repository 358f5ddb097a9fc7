"""The admin server: requests per second of the check endpoint, and what an open dashboard costs.

Two measures:

- HTTP: ``rollout serve`` in a subprocess (SQLite file, a bearer token, access log off) driven
  by ``wrk`` on loopback: ``GET /api/v1/flags/chat/check?user=42`` against two baselines
  measured the same way in the same run: the same server's ``GET /healthz`` (the same process,
  middleware and JSON, no flag), and a bare Starlette app answering ``ok`` under the same
  uvicorn. Both servers run at once and the endpoints take turns, ``ROUNDS`` times, so a drift
  of this shared machine's load hits each alike; each is reported by its best round, with the
  range of its ratio to the baseline over the rounds, and with the server's CPU time per
  request (all its threads, from ``/proc``), which other processes' load disturbs far less
  than a rate. Target (PASS/MISS): the check at ``TARGET``x the bare app's rate or more, by
  rate and by CPU per request both.
  Skipped, saying how to install it, when ``wrk`` is not on PATH.
- ``active()`` with a dashboard open: in one process, ``flags.active(...)`` timed with nothing
  else running, then with the admin app served by uvicorn on a thread of the same process, an
  event-stream client connected to ``/events`` (an open dashboard) and ``/metrics`` scraped
  (check sampling on). Each is timed like the Checks table (best of repeats) and as the mean
  of repeats spanning several seconds, which includes the sampler's counting windows.

``python -m bench.http_bench`` prints the tables.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollout import Rollout
from rollout.admin._sampling import DEFAULT_PERIOD, DEFAULT_WINDOW

from .checks import User, build_rollout
from .report import Table

__all__ = ["Runs", "measure_http", "tables"]

TOKEN = "bench-token"
DURATION_S = 2
CONNECTIONS = 16
#: Turns each endpoint takes; the best of them is reported.
ROUNDS = 3
#: An endpoint answering with a flag's state at this fraction of a bare app's rate or more.
TARGET = 0.9
WRK_INSTALL = "apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS)"

#: A bare Starlette app, served by uvicorn on a socket bound the way `rollout serve` binds it.
_HELLO = """
import socket, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
async def hello(request):
    return PlainTextResponse("ok")
app = Starlette(routes=[Route("/", hello)])
from rollout.admin._serve import bind
sock = bind("127.0.0.1", 0)
print(f"Dashboard: http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
# The settings rollout serve runs with that touch a request: h11 (serve's protocol is h11's,
# where "auto" would pick httptools if installed), the same event loop ("auto"), no access log,
# no proxy headers (uvicorn's default wraps the app in ProxyHeadersMiddleware; serve does only
# with --forwarded-allow-ips), lifespan on.
config = uvicorn.Config(app, http="h11", lifespan="on", log_config=None,
                        access_log=False, ws="none", server_header=False, proxy_headers=False)
uvicorn.Server(config).run(sockets=[sock])
"""


@dataclass(frozen=True)
class Wrk:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx answers
    cpu_us: float | None = None  # the server's CPU time per request (None: not on Linux)


@dataclass(frozen=True)
class Runs:
    """One endpoint's wrk runs, one a round, the rounds taken in turn with the other endpoints."""

    runs: tuple[Wrk, ...]

    @property
    def best(self) -> Wrk:
        return max(self.runs, key=lambda run: run.requests_per_s)

    @property
    def cpu_us(self) -> float | None:
        measured = [run.cpu_us for run in self.runs if run.cpu_us is not None]
        return min(measured) if measured else None

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    def ratio(self, baseline: Runs) -> float:
        """This endpoint's best rate over the baseline's best."""
        return self.best.requests_per_s / baseline.best.requests_per_s

    def ratio_range(self, baseline: Runs) -> tuple[float, float]:
        """The lowest and highest ratio of this endpoint's rate to the baseline's in one round."""
        ratios = [
            mine.requests_per_s / theirs.requests_per_s
            for mine, theirs in zip(self.runs, baseline.runs, strict=True)
        ]
        return min(ratios), max(ratios)

    def cpu_ratio(self, baseline: Runs) -> float | None:
        """The baseline's CPU per request over this endpoint's: a rate ratio, were the server
        alone on a core."""
        mine, theirs = self.cpu_us, baseline.cpu_us
        return None if mine is None or theirs is None else theirs / mine


@dataclass(frozen=True)
class HttpResults:
    hello: Runs
    healthz: Runs
    check: Runs
    load_average: float


@dataclass(frozen=True)
class ActiveCost:
    label: str
    alone_best_ns: float
    open_best_ns: float
    alone_mean_ns: float
    open_mean_ns: float
    counting_ns: float  # inside a counting window (the sampler's wrapper in place)


# HTTP with wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    url: str  # without the trailing /
    pid: int


@contextlib.contextmanager
def _server(command: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Served]:
    """Start a server that prints ``Dashboard: URL``; yield it; SIGTERM it afterwards."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("Dashboard: "):
                yield Served(line.removeprefix("Dashboard: ").strip().rstrip("/"), process.pid)
                break
        else:
            raise RuntimeError(f"{command[:4]} exited ({process.wait()}) before serving")
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def _cpu_seconds(pid: int) -> float | None:
    """The CPU time process ``pid`` has used, all its threads (None where /proc is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wrk(
    url: str, *, seconds: int = DURATION_S, script: Path | None = None, pid: int | None = None
) -> Wrk:
    """wrk's rate, p50, p99 and errors for ``url``; ``script``: a wrk Lua script (a POST);
    ``pid``: the server's process, whose CPU time per request is then measured too."""
    command = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-H", f"Authorization: Bearer {TOKEN}", *(["-s", str(script)] if script else []), url,
    ]  # fmt: skip
    cpu_before = None if pid is None else _cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    cpu_after = None if pid is None else _cpu_seconds(pid)
    rate = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    # Anchored: the Thread Stats lines end in a percentage too ("90.50%"), then "Req/Sec".
    p50, p99 = (_find(rf"(?m)^\s*{q}%\s+(\S+)$", out) for q in (50, 99))
    requests = int(_find(r"(\d+) requests in", out))
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and requests:
        cpu_us = (cpu_after - cpu_before) / requests * 1e6
    return Wrk(rate, _ms(p50), _ms(p99), errors, cpu_us)


def take_turns(targets: dict[str, tuple[str, int, Path | None]], rounds: int) -> dict[str, Runs]:
    """``targets``: name -> (url, server pid, wrk script). A 1 s warm-up of each, then
    ``rounds`` rounds in which each takes its turn."""
    for url, pid, script in targets.values():
        _wrk(url, seconds=1, script=script, pid=pid)
    runs: dict[str, list[Wrk]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, pid, script) in targets.items():
            runs[name].append(_wrk(url, script=script, pid=pid))
    return {name: Runs(tuple(done)) for name, done in runs.items()}


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return match.group(1)


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure_http(rounds: int = ROUNDS) -> HttpResults:
    """wrk against the bare app, /healthz and the check endpoint of one rollout serve, in turns."""
    load_average = os.getloadavg()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory(prefix="rollout-http-bench-") as directory:
        with Rollout(f"sqlite:///{Path(directory) / 'rollout.db'}") as seed:
            build_rollout(seed)
        serve = [sys.executable, "-m", "rollout", "serve", "--http", "127.0.0.1:0"]
        with (
            _server([sys.executable, "-c", _HELLO], Path(directory), env) as bare,
            _server([*serve, "--no-access-log"], Path(directory), env) as served,
        ):
            runs = take_turns(
                {
                    "hello": (bare.url + "/", bare.pid, None),
                    "healthz": (served.url + "/healthz", served.pid, None),
                    "check": (f"{served.url}/api/v1/flags/chat/check?user=42", served.pid, None),
                },
                rounds,
            )
    return HttpResults(runs["hello"], runs["healthz"], runs["check"], load_average)


def endpoint_rows(
    measured: Sequence[tuple[str, Runs, str]], baseline: Runs, *, per_request: Sequence[int] = ()
) -> list[list[str]]:
    """One row an endpoint: (label, runs, target verdict or ""); ``per_request``: evaluations
    each request makes, for an evaluations/s column."""
    rows = []
    for i, (label, runs, verdict) in enumerate(measured):
        best = runs.best
        low, high = runs.ratio_range(baseline)
        cpu, cpu_ratio = runs.cpu_us, runs.cpu_ratio(baseline)
        row = [label, f"{best.requests_per_s:,.0f}", f"{runs.ratio(baseline):.2f}x",
               f"{low:.2f}-{high:.2f}", "-" if cpu is None else f"{cpu:.0f}",
               "-" if cpu_ratio is None else f"{cpu_ratio:.2f}x"]  # fmt: skip
        if per_request:
            count = per_request[i]
            row.append(f"{best.requests_per_s * count:,.0f}" if count else "-")
        row += [f"{best.p50_ms:.2f}", f"{best.p99_ms:.2f}", str(runs.errors), verdict]
        rows.append(row)
    return rows


def verdict(runs: Runs, baseline: Runs) -> str:
    """PASS when the best rate is ``TARGET``x the baseline's or more, and so is the CPU ratio
    where measured: on this shared machine one lucky round of rates read 0.94x while the CPU
    per request said 0.71x, and the next run's rates 0.60x."""
    cpu = runs.cpu_ratio(baseline)
    met = runs.ratio(baseline) >= TARGET and (cpu is None or cpu >= TARGET)
    return f"{'PASS' if met else 'MISS'} (>= {TARGET:g}x{'' if cpu is None else ', both'})"


#: The columns endpoint_rows fills (with "evaluations/s" after "x base (CPU)" when asked).
ENDPOINT_HEADERS = ["requests/s", "x baseline", "x, each round", "CPU us/request",
                    "x base (CPU)"]  # fmt: skip
TAIL_HEADERS = ["p50 ms", "p99 ms", "errors", "target"]


# active() with a dashboard open ----------------------------------------------------------------


def _times_ns(stmt: str, namespace: dict[str, object], repeat: int) -> tuple[float, float]:
    """(best, mean) ns per call over ``repeat`` repeats of about 0.2 s (gc off, as timeit)."""
    timer = timeit.Timer(stmt, globals=namespace)
    number, _ = timer.autorange()
    runs = [t / number * 1e9 for t in timer.repeat(repeat=repeat, number=number)]
    return min(runs), sum(runs) / len(runs)


@contextlib.contextmanager
def _dashboard_open(flags: Rollout) -> Iterator[None]:
    """The admin app served in this process, an /events client connected, /metrics scraped."""
    import uvicorn

    from rollout.admin import create_app
    from rollout.admin._metrics import stop_sampling
    from rollout.admin._serve import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(flags), log_config=None, access_log=False, ws="none", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    events = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        events.request("GET", "/events", headers={"Accept": "text/event-stream"})
        stream = events.getresponse()
        assert stream.status == 200, stream.status
        scrape = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        scrape.request("GET", "/metrics")
        assert scrape.getresponse().status == 200
        scrape.close()
        # Changes until one reaches the open stream (it subscribes after sending its headers).
        seen = threading.Event()

        def change() -> None:
            percentage = 0
            while not seen.wait(0.2):
                percentage = percentage % 100 + 1  # a real change each time, so an event
                flags.activate_percentage("dashboard-is-live", percentage)

        writer = threading.Thread(target=change, daemon=True)
        writer.start()
        received = b""
        try:
            while b"dashboard-is-live" not in received:
                chunk = stream.read1(65536)
                if not chunk:
                    raise RuntimeError(f"/events ended without an event: {received!r}")
                received += chunk
        finally:
            seen.set()
            writer.join()
        yield
    finally:
        events.close()
        server.should_exit = True
        thread.join(30)
        stop_sampling(flags)
        sock.close()


@contextlib.contextmanager
def _always_counting(flags: Rollout) -> Iterator[None]:
    """A sampler whose counting window lasts the whole block (what 1% of checks pay)."""
    from rollout.admin._sampling import CheckSampler

    original = flags.active
    sampler = CheckSampler(flags, window=600, period=600)
    sampler.start()
    try:
        while flags.active is original:
            time.sleep(0.001)
        yield
    finally:
        sampler.stop()


def measure_active(repeat: int = 5) -> list[ActiveCost]:
    flags = build_rollout()
    user = User(id=7, groups=("customers",))  # outside the 20%: every rule of "chat" runs
    cases = [('flags.active("on")', "global"), ('flags.active("chat", user)', "per-user")]
    namespace: dict[str, object] = {"flags": flags, "user": user}
    alone: dict[str, list[tuple[float, float]]] = {stmt: [] for stmt, _ in cases}
    opened: dict[str, list[tuple[float, float]]] = {stmt: [] for stmt, _ in cases}
    counting: dict[str, float] = {}
    try:
        for _ in range(2):  # interleaved, so drift of the machine hits both alike
            for stmt, _label in cases:
                alone[stmt].append(_times_ns(stmt, namespace, repeat))
            with _dashboard_open(flags):
                for stmt, _label in cases:
                    opened[stmt].append(_times_ns(stmt, namespace, repeat))
        with _always_counting(flags):
            for stmt, _label in cases:
                counting[stmt] = _times_ns(stmt, namespace, 3)[0]
    finally:
        flags.close()
    return [
        ActiveCost(
            label,
            min(best for best, _ in alone[stmt]),
            min(best for best, _ in opened[stmt]),
            min(mean for _, mean in alone[stmt]),
            min(mean for _, mean in opened[stmt]),
            counting[stmt],
        )
        for stmt, label in cases
    ]


# Tables ----------------------------------------------------------------------------------------


def _http_table() -> Table:
    if shutil.which("wrk") is None:
        note = f"Skipped: wrk is not installed ({WRK_INSTALL})."
        print(f"bench.http_bench: {note}", file=sys.stderr)
        return Table("Admin HTTP: check endpoint", ["server", "result"], [["wrk", "skipped"]],
                     (note,))  # fmt: skip
    results = measure_http()
    base = results.hello
    rows = endpoint_rows(
        [
            ("baseline: bare Starlette app, GET / (ok)", base, ""),
            ("rollout serve: GET /healthz", results.healthz, ""),
            (
                "rollout serve: GET /api/v1/flags/chat/check?user=42",
                results.check,
                verdict(results.check, base),
            ),
        ],
        base,
    )
    notes = (
        f"wrk, 1 thread, {CONNECTIONS} connections, {DURATION_S} s a turn after a 1 s warm-up, "
        "loopback; one uvicorn process (h11) for each server, with a bearer token on every "
        "request; the serve's access log off. The serve's connections write an answer given "
        "whole themselves (the bytes h11 would send, without h11's send); the bare app's go "
        "through h11 as uvicorn has them.",
        f"Both servers run at once and the endpoints take turns, {ROUNDS} rounds: each "
        "endpoint's best round, its ratio to the baseline's best (and, per round, to the "
        "baseline's run of that round); CPU: the server process's CPU time per request (its "
        "best round), the steadier measure on a shared machine.",
        "chat: the Checks table's 20% flag with three groups, on the default SQLite store.",
        f"wrk and the server share this machine's {os.cpu_count()} CPUs; its 1-minute load "
        f"average was {results.load_average:.2f} when the section started.",
    )
    headers = ["endpoint", *ENDPOINT_HEADERS, *TAIL_HEADERS]
    return Table("Admin HTTP: check endpoint", headers, rows, notes)


def _active_table() -> Table:
    rows = []
    for cost in measure_active():
        for how, alone, opened in (
            ("best of repeats", cost.alone_best_ns, cost.open_best_ns),
            ("mean of repeats", cost.alone_mean_ns, cost.open_mean_ns),
        ):
            rows.append(
                [f"{cost.label}, {how}", f"{alone:.1f}", f"{opened:.1f}", f"{opened / alone:.2f}x"]
            )
        rows.append(
            [
                f"{cost.label}, inside a counting window",
                f"{cost.alone_best_ns:.1f}",
                f"{cost.counting_ns:.1f}",
                f"{cost.counting_ns / cost.alone_best_ns:.2f}x",
            ]
        )
    notes = (
        "alone: the Checks table's flags in an in-memory Rollout, nothing else running. Open: "
        "create_app(flags) served by uvicorn on a thread of the same process, one client "
        "connected to /events (an open dashboard, which got an event) and /metrics scraped "
        f"(check sampling on: {DEFAULT_WINDOW * 1000:g} ms of every {DEFAULT_PERIOD:g} s).",
        "Each: repeats of about 0.2 s (gc off), in two rounds interleaved with the other "
        "column; the best repeat, and the mean of repeats (which spans the counting windows).",
        "Inside a counting window: the check while the sampler's counting wrapper is in place, "
        "which happens only during the windows; averaged over time that extra cost is divided "
        f"by {DEFAULT_PERIOD / DEFAULT_WINDOW:g}.",
    )
    headers = ["check", "alone, ns", "dashboard open, ns", "ratio"]
    return Table("Admin: active() with a dashboard open", headers, rows, notes)


def tables() -> list[Table]:
    print("measuring the admin server (about 60 s)...", file=sys.stderr, flush=True)
    return [_http_table(), _active_table()]


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
