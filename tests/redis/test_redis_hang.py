"""A write to a Redis that hangs: its outcome is unknown, and every surface says so.

A private ``redis-server`` is stopped with SIGSTOP until the client under test has given up (at
the 5 s socket time-out of a store made from a URL: redis-py before 8 has none of its own, and
without the store's the write would wait for the server), then continued. The write's Lua
script is already in the server's socket buffer, so it runs when the server gets SIGCONT: the
caller must have been told "may or may not have happened" (``StoreOutcomeUnknownError``, HTTP
504, exit status 3), never "nothing was written"."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import redis

from rollout import Rollout, StoreError, StoreOutcomeUnknownError, StoreUnavailableError
from rollout._core.clock import Timestamp
from rollout._core.keys import EXISTS
from rollout._core.state import Register
from rollout.redis import RedisStore
from rollout.testing import eventually

from ..admin.serve_process import ROLLOUT, clean_env, serve
from .redis_fixtures import private_redis  # noqa: F401  (fixture)
from .redis_server import RedisServer, with_namespace

TOKEN = "0123456789abcdef0123456789abcdef"


def test_a_write_to_a_hung_redis_is_an_unknown_outcome_and_lands_later(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    url = with_namespace(private_redis.url, "hang")
    with Rollout(url) as flags:
        flags.activate_user("chat", "before")
        # Its subscriber's first connection re-seeds through the store's save connection: done
        # before the hang, else on a loaded machine the write under test waits for it, then
        # reconnects into the hung server (unsent: unavailable).
        assert flags.wait_synced(30.0)
        with private_redis.hung(), pytest.raises(StoreError) as caught:
            flags.activate_user("chat", "during")
        error = caught.value
        print(f"{type(error).__name__}: {error}")
        assert isinstance(error, StoreOutcomeUnknownError)
        assert not isinstance(error, StoreUnavailableError)  # that one promises nothing written
        assert "may or may not" in str(error)
        # Redis ran the script after SIGCONT: the write is in Redis, and its change notification
        # brings it into this replica, which had not applied it.
        eventually(lambda: flags.active("chat", "during"), 30, "the late write reaches the replica")
        events = [event for event in flags.history("chat") if event.action == "activate_user"]
        assert len(events) == 2  # and its history event says it landed (once)
    with Rollout(url) as fresh:
        assert fresh.get("chat").users == {"before", "during"}


def test_a_connection_refused_is_still_unavailable_with_nothing_written(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    url = with_namespace(private_redis.url, "down")
    with Rollout(url) as flags:
        flags.activate_user("chat", "before")
        private_redis.stop()
        with pytest.raises(StoreUnavailableError):
            flags.activate_user("chat", "during")
        assert not flags.active("chat", "during")


def test_a_write_that_could_not_be_sent_to_a_hung_redis_is_unavailable(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    # A store with no connection yet: the connection's own handshake (HELLO) is what times out,
    # so the write was never sent, and saying so (nothing written) is exact.
    url = with_namespace(private_redis.url, "fresh")
    store = RedisStore.from_url(url)
    try:
        with private_redis.hung(), pytest.raises(StoreUnavailableError) as caught:
            store.save({"chat": {EXISTS: Register(Timestamp(1, 0, 1), True)}})
        print(caught.value)
        assert not isinstance(caught.value, StoreOutcomeUnknownError)
        assert store.load() == {}  # Redis runs again: nothing arrived late
    finally:
        store.close()


def test_serve_answers_504_and_the_cli_exits_3_for_a_hung_redis(
    private_redis: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = with_namespace(private_redis.url, "served")
    env = clean_env(ROLLOUT_TOKEN=f"ops={TOKEN}")
    args = ("--http", "127.0.0.1:0", "--store", url)
    with serve(*args, cwd=tmp_path, env=env, token=TOKEN) as served, served.client() as http:
        ok = http.put("/api/v1/flags/chat/percentage", json={"percentage": 10})
        assert ok.status_code == 200, ok.text
        with private_redis.hung():
            answer = http.put("/api/v1/flags/chat/percentage", json={"percentage": 60})
        print(answer.text)
        assert answer.status_code == 504
        error = answer.json()["error"]
        assert error["code"] == "outcome_unknown"
        assert "may or may not" in error["message"]
        assert "nothing was written" not in error["message"]
        # It did happen: once Redis runs again, the node serves it.
        eventually(
            lambda: http.get("/api/v1/flags/chat").json()["percentage"] == 60,
            30,
            "the late write served",
        )

        # The command line: `rollout import` reads its input only after it loaded the store,
        # so Redis can be stopped between the two and the import's write is the one that hangs.
        blob = _percentage_blob(70)
        command = subprocess.Popen(
            [str(ROLLOUT), "--store", url, "import"],
            cwd=tmp_path, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            eventually(lambda: _reading_stdin(command.pid), 30, "the command waits for input")
            # Its transport subscribed and finished its first round (re-seed, load): else the
            # import's write could need a new connection, whose handshake would hang instead
            # (nothing sent: StoreUnavailableError, which is right, but not this test's case).
            with private_redis.client() as watcher:
                eventually(lambda: _subscribers(watcher, "served:changes") == 2, 30)
                eventually(lambda: _quiet(watcher), 30, "the command's start-up done")
            with private_redis.hung():
                _, stderr_bytes = command.communicate(blob, timeout=60)
        finally:
            if command.poll() is None:
                command.kill()
                command.wait(timeout=10)
        stderr = stderr_bytes.decode()
        print(stderr)
        assert command.returncode == 3, stderr
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert "may or may not have happened" in lines[0]
        eventually(
            lambda: http.get("/api/v1/flags/chat").json()["percentage"] == 70,
            30,
            "the command's late write served",
        )
    assert "Traceback" not in served.stderr()


def _percentage_blob(percentage: float) -> bytes:
    """An export (the import's input) setting ``chat`` to ``percentage``."""
    with Rollout() as source:
        source.activate_percentage("chat", percentage)
        return source.export()


def _reading_stdin(pid: int) -> bool:
    """Whether process ``pid`` is blocked reading its standard input (Linux: read(0, ...))."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    read = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)
    return len(fields) > 1 and fields[0] == read and fields[1] == "0x0"


def _subscribers(client: redis.Redis, channel: str) -> int:
    return int(client.pubsub_numsub(channel)[0][1])


def _quiet(client: redis.Redis, seconds: float = 0.3) -> bool:
    """Whether Redis ran no command (but this client's INFO) for ``seconds``."""

    def calls() -> int:
        stats = client.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")

    before = calls()
    time.sleep(seconds)
    return calls() == before
