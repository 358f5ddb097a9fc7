"""OFREP: flag evaluations per second over HTTP, single and bulk, against a bare Starlette app.

``rollout serve`` in a subprocess (SQLite file, a bearer token, access log off) driven by
``wrk`` on loopback, every request a ``POST`` with the same JSON evaluation context, as an
OpenFeature OFREP provider sends it:

- single: ``POST /ofrep/v1/evaluate/flags/chat`` (one evaluation a request);
- bulk: ``POST /ofrep/v1/evaluate/flags`` over ``BULK_FLAGS`` flags (the web provider's call);
- bulk polled with the last answer's ETag in ``If-None-Match``: a 304, what a web client pays
  while nothing changes.

The baseline, measured the same way in the same run: a bare Starlette app under the same
uvicorn whose ``POST /`` parses the same JSON body and answers a small JSON object (what an
evaluation endpoint does with no flag behind it). Both servers run at once and the endpoints
take turns, as in ``http_bench`` (best round, the ratio's range over rounds, the server's CPU
per request). Target (PASS/MISS): the single evaluation at ``TARGET``x the baseline (http_bench's
``TARGET``), by rate and by CPU per request both.
Skipped, saying how to install it, when ``wrk`` is not on PATH.
``python -m bench.ofrep_bench`` prints the table.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rollout import Rollout

from .checks import build_rollout
from .http_bench import (
    CONNECTIONS,
    DURATION_S,
    ENDPOINT_HEADERS,
    ROUNDS,
    TAIL_HEADERS,
    TOKEN,
    WRK_INSTALL,
    Runs,
    _server,
    endpoint_rows,
    take_turns,
    verdict,
)
from .report import Table

__all__ = ["BULK_FLAGS", "tables"]

#: Flags in the store, all in every bulk answer: the Checks table's three and more to make this.
BULK_FLAGS = 20
CONTEXT = {"context": {"targetingKey": "42", "plan": "pro", "country": "NL"}}

#: The baseline: a bare Starlette app that reads the JSON body and answers JSON.
_BARE = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def evaluate(request):
    context = (await request.json())["context"]
    return JSONResponse({"key": "chat", "value": bool(context), "reason": "STATIC"})
app = Starlette(routes=[Route("/", evaluate, methods=["POST"])])
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
class OfrepResults:
    bare: Runs
    single: Runs
    bulk: Runs
    not_modified: Runs
    load_average: float


def _script(directory: Path, name: str, etag: str | None = None) -> Path:
    """A wrk Lua script: every request a POST of CONTEXT (with If-None-Match: ``etag``)."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(CONTEXT))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if etag is not None:
        lines.append(f'wrk.headers["If-None-Match"] = {json.dumps(etag)}')
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _post(url: str, path: str) -> tuple[int, str | None, dict[str, object]]:
    """One POST of CONTEXT: status, ETag and JSON body (what wrk sends, checked once)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(
            "POST", path, body=json.dumps(CONTEXT),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        response = connection.getresponse()
        return response.status, response.headers["ETag"], json.loads(response.read())
    finally:
        connection.close()


def measure_ofrep() -> OfrepResults:
    load_average = os.getloadavg()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory(prefix="rollout-ofrep-bench-") as tmp:
        directory = Path(tmp)
        with Rollout(f"sqlite:///{directory / 'rollout.db'}") as seed:
            build_rollout(seed)
            for i in range(BULK_FLAGS - len(seed.features())):
                seed.activate_percentage(f"feature-{i}", 10 * (i % 10))
            flags = len(seed.features())
        post = _script(directory, "post")
        serve = [sys.executable, "-m", "rollout", "serve", "--http", "127.0.0.1:0"]
        with (
            _server([sys.executable, "-c", _BARE], directory, env) as bare,
            _server([*serve, "--no-access-log"], directory, env) as served,
        ):
            url = served.url
            status, _, answer = _post(url, "/ofrep/v1/evaluate/flags/chat")
            if status != 200 or not isinstance(answer.get("value"), bool):
                raise RuntimeError(f"the single evaluation answered {status}: {answer}")
            status, etag, answer = _post(url, "/ofrep/v1/evaluate/flags")
            answered = answer.get("flags")
            if status != 200 or etag is None or not isinstance(answered, list):
                raise RuntimeError(f"the bulk evaluation answered {status}: {answer}")
            if len(answered) != flags:
                raise RuntimeError(f"the bulk answer holds {len(answered)} flags, not {flags}")
            polled = _script(directory, "poll", etag)
            runs = take_turns(
                {
                    "bare": (bare.url + "/", bare.pid, post),
                    "single": (f"{url}/ofrep/v1/evaluate/flags/chat", served.pid, post),
                    "bulk": (f"{url}/ofrep/v1/evaluate/flags", served.pid, post),
                    "not_modified": (f"{url}/ofrep/v1/evaluate/flags", served.pid, polled),
                },
                ROUNDS,
            )
    return OfrepResults(
        runs["bare"], runs["single"], runs["bulk"], runs["not_modified"], load_average
    )


def tables() -> list[Table]:
    title = "OFREP: evaluations per second over HTTP"
    if shutil.which("wrk") is None:
        note = f"Skipped: wrk is not installed ({WRK_INSTALL})."
        print(f"bench.ofrep_bench: {note}", file=sys.stderr)
        return [Table(title, ["endpoint", "result"], [["wrk", "skipped"]], (note,))]
    print("measuring OFREP over HTTP (about 40 s)...", file=sys.stderr, flush=True)
    results = measure_ofrep()
    base = results.bare
    rows = endpoint_rows(
        [
            ("baseline: bare Starlette app, POST / (JSON in, JSON out)", base, ""),
            (
                "single: POST /ofrep/v1/evaluate/flags/chat",
                results.single,
                verdict(results.single, base),
            ),
            (f"bulk: POST /ofrep/v1/evaluate/flags ({BULK_FLAGS} flags)", results.bulk, ""),
            ("bulk polled with If-None-Match (304, no evaluation)", results.not_modified, ""),
        ],
        base,
        per_request=(1, 1, BULK_FLAGS, 0),
    )
    notes = (
        f"wrk, 1 thread, {CONNECTIONS} connections, {DURATION_S} s a turn after a 1 s warm-up, "
        "loopback; one uvicorn process (h11) for each server, a bearer token on every request, "
        f"the body {json.dumps(CONTEXT)}; the serve's access log off, its store an SQLite file.",
        f"Both servers run at once and the endpoints take turns, {ROUNDS} rounds: each "
        "endpoint's best round and its ratio to the baseline's best (and the range of the "
        "per-round ratios); CPU: the server process's CPU time per request.",
        "chat: the Checks table's 20% flag with three groups; the bulk answer evaluates every "
        f"flag of the store ({BULK_FLAGS}).",
        f"wrk and the server share this machine's {os.cpu_count()} CPUs; its 1-minute load "
        f"average was {results.load_average:.2f} when the section started.",
    )
    headers = ["endpoint", *ENDPOINT_HEADERS, "evaluations/s", *TAIL_HEADERS]
    return [Table(title, headers, rows, notes)]


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
