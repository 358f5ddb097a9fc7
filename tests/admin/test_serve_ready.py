"""``/healthz`` and ``/livez`` say the process is alive; ``/readyz`` says whether its store,
transport and clock let it serve: a real ``rollout serve`` on a real ``redis-server`` stopped and
started again."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from rollout import Rollout
from rollout.testing import eventually
from rollout.testing.cluster import free_port

from ..redis.redis_server import RedisServer, need_redis, redis_binary
from .serve_process import clean_env, serve

TOKEN = "ready-token-0123456789abcdef0123"


def _ready(http: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = http.get("/readyz")
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _ready_with(http: httpx.Client, status: int) -> dict[str, Any] | None:
    """The /readyz body if it answers ``status`` (for ``eventually``), else None."""
    got, body = _ready(http)
    return body if got == status else None


@contextmanager
def _own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start again."""
    binary = redis_binary()
    if binary is None:
        need_redis("no redis-server on this machine")
    server = RedisServer(binary, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _store_down(http: httpx.Client) -> dict[str, Any] | None:
    """The /readyz body once it is 503 with the store check failing, else None."""
    body = _ready_with(http, 503)
    return body if body is not None and body["checks"]["store"]["ok"] is False else None


@pytest.mark.slow
def test_readyz_names_the_store_while_redis_is_down_and_recovers_with_it(tmp_path: Path) -> None:
    with _own_redis(tmp_path) as server:
        env = clean_env(ROLLOUT_TOKEN=TOKEN)
        with (
            serve("--store", server.url, "--http", "127.0.0.1:0", cwd=tmp_path, env=env) as s,
            s.client(token=None) as anonymous,  # the probes need no token
        ):
            body = eventually(lambda: _ready_with(anonymous, 200), timeout=30, what="ready")
            assert body == {
                "status": "ready",
                "checks": {
                    "open": {"ok": True, "problem": None},
                    "store": {"ok": True, "problem": None},
                    "transport": {"ok": True, "problem": None},
                    "clock": {"ok": True, "problem": None},
                },
            }

            server.stop()
            # (The transport may fail first: the store's answer is reused for up to a second.)
            body = eventually(
                lambda: _store_down(anonymous), timeout=30, what="not ready, Redis down"
            )
            assert body is not None
            print(body)
            assert body["status"] == "not ready"
            assert "store" in body["checks"]["store"]["problem"]
            # Nothing about where the store is: the probe is public.
            text = anonymous.get("/readyz").text
            assert str(server.port) not in text
            assert "127.0.0.1" not in text
            # Liveness stays: restarting the process would not bring Redis back.
            assert anonymous.get("/healthz").status_code == 200
            assert anonymous.get("/livez").status_code == 200

            server.start()
            eventually(lambda: _ready_with(anonymous, 200), timeout=60, what="ready again")
        assert s.returncode == 0, s.stderr()
        assert "Traceback" not in s.stderr()


def test_readyz_is_not_ready_while_no_peer_has_confirmed_the_clock_then_ready(
    tmp_path: Path,
) -> None:
    """A node configured with peers refuses local writes until one confirms its clock."""
    secret = secrets.token_urlsafe(32)
    peer_address = f"127.0.0.1:{free_port()}"  # nobody there yet
    env = clean_env(ROLLOUT_TOKEN=TOKEN, ROLLOUT_SECRET=secret)
    args = ("--store", "memory://", "--listen", f"127.0.0.1:{free_port()}", "--http", "127.0.0.1:0")
    with (
        serve(*args, "--peers", peer_address, cwd=tmp_path, env=env) as s,
        s.client(token=None) as anonymous,
    ):
        status, body = _ready(anonymous)
        assert status == 503
        assert body["checks"]["clock"]["ok"] is False
        assert "clock" in body["checks"]["clock"]["problem"]
        assert body["checks"]["store"]["ok"] is True
        assert anonymous.get("/livez").status_code == 200
        with Rollout(listen=peer_address, secret=secret):
            eventually(lambda: _ready_with(anonymous, 200), timeout=60, what="clock confirmed")


@pytest.mark.slow
def test_readyz_in_a_loop_reaches_the_store_about_once_a_second(tmp_path: Path) -> None:
    with _own_redis(tmp_path) as server:
        env = clean_env(ROLLOUT_TOKEN=TOKEN)
        with (
            serve("--store", server.url, "--http", "127.0.0.1:0", cwd=tmp_path, env=env) as s,
            s.client(token=None) as anonymous,
            redis.Redis.from_url(server.url) as watcher,
        ):
            eventually(lambda: _ready_with(anonymous, 200), timeout=30, what="ready")
            before = _pings(watcher)
            started, probes = time.monotonic(), 0
            while probes < MAX_PROBES and time.monotonic() - started < 3:
                assert anonymous.get("/readyz").status_code == 200
                probes += 1
            seconds = time.monotonic() - started
            pings = _pings(watcher) - before
            print(f"{probes} unauthenticated /readyz in {seconds:.2f} s: {pings} PINGs to Redis")
            # About one round trip a second (plus slack for redis-py's own PINGs on idle
            # connections), not one per probe; and still some: the answer is not stale.
            assert 1 <= pings <= seconds + 3
            # Still truthful: a store that goes away shows within a second or two.
            server.stop()
            eventually(lambda: _ready_with(anonymous, 503), timeout=30, what="not ready")


#: At most this many probes in the loop (it runs for 3 s): far more than one a second.
MAX_PROBES = 5000


def _pings(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def test_readyz_is_not_ready_once_the_sqlite_file_is_deleted(tmp_path: Path) -> None:
    """Writes into a deleted file are refused (they would be lost): no traffic should come."""
    folder = tmp_path / "state"
    folder.mkdir()
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    store = f"sqlite:///{folder / 'flags.db'}"
    with (
        serve("--store", store, "--http", "127.0.0.1:0", cwd=tmp_path, env=env) as s,
        s.client(token=None) as anonymous,
    ):
        assert _ready(anonymous)[0] == 200
        shutil.rmtree(folder)
        # A store answer is reused for up to a second (probes are public): wait for a new one.
        eventually(lambda: _ready(anonymous)[0] == 503, timeout=30, what="not ready")
        status, body = _ready(anonymous)
        print(body)
        assert status == 503
        assert body["checks"]["store"]["ok"] is False
        assert "refuses to serve" in body["checks"]["store"]["problem"]
        assert "state" not in str(body)  # the probe is public: no path
        assert anonymous.get("/livez").status_code == 200
    log = s.stderr()
    assert "Traceback" not in log
    assert "deleted or replaced" in log  # the log says why, naming the file
