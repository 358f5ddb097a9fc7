"""A tiny WSGI app for test_gunicorn: one ``Rollout`` made at import time.

Under ``gunicorn --preload`` the import runs in the master, so the replica (and its replication
thread) is created once and then inherited by every forked worker, which is exactly the case
where a worker must restart replication under a node id of its own.

- ``GET /flip?name=x``: activate flag x here, wait until the peers have it; ``{"pid", "synced"}``
- ``GET /check?name=x``: ``{"pid", "active": "1" or "0"}``
- ``GET /node``: ``{"pid", "node"}``, this worker's replication node id
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from rollout import Rollout

flags = Rollout(
    listen="127.0.0.1:0",
    peers=[os.environ["ROLLOUT_SEED"]],
    secret=os.environ["ROLLOUT_SECRET"],
)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["x"])[0]
    body: dict[str, Any] = {"pid": os.getpid()}
    if path == "/flip":
        flags.activate(name)
        body["synced"] = flags.wait_synced(10.0)
    elif path == "/check":
        body["active"] = "1" if flags.active(name) else "0"
    elif path == "/node":
        body["node"] = flags.stats()["node"]
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    data = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
