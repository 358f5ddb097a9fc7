"""Passwords in URLs never reach stdout, stderr, logs or an exception (docs/security.md, "Secrets
in URLs"): the installed command and ``rollout serve`` as real processes, a real password-
protected ``redis-server``, and ``Rollout(url)`` in-process for the exception chain."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.memory import MemoryStore
from rollout.testing.cluster import free_port

from ..admin.serve_process import clean_env, rollout, serve

SECRET = "hunter2-Zq9"
TOKEN = "redaction-token-0123456789abcdef"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def bad_store_urls() -> list[str]:
    port = closed_port()
    return [
        f"redis://:{SECRET}@127.0.0.1:{port}/0",  # the server is down
        f"redis://app:{SECRET}@127.0.0.1:notaport/0",  # redis-py cannot parse it
        f"redis://127.0.0.1:{port}/0?password={SECRET}&socket_timeout=soon",
        f"redis+sentinel://:{SECRET}@127.0.0.1:{port}/",  # no service named
        f"redis+sentinel://:{SECRET}@127.0.0.1:{port}/mymaster",  # no sentinel there
        f"sqlite://app:{SECRET}@host/x.db",
        f"mysql://app:{SECRET}@host/db",  # an unknown scheme
    ]


@pytest.mark.parametrize("url", bad_store_urls())
def test_the_cli_never_prints_a_store_password(url: str, tmp_path: Path) -> None:
    for args, env in ((["--store", url], {}), ([], {"ROLLOUT_STORE": url})):
        result = rollout(*args, "list", cwd=tmp_path, env=clean_env(**env))
        assert result.returncode == 2
        assert result.stderr.startswith("rollout: error: "), result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["quarantine", "--url", f"http://ops:{SECRET}@127.0.0.1:{closed_port()}"], True),
        (["members", "--url", f"http://ops:{SECRET}@127.0.0.1:notaport"], True),
        (["import-ruby", "--redis", f"redis://:{SECRET}@127.0.0.1:notaport/0"], True),
        # redis-py's "Error 111 connecting to 127.0.0.1:PORT": the URL is not quoted at all.
        (["import-ruby", "--redis", f"redis://:{SECRET}@127.0.0.1:{closed_port()}/0"], False),
    ],
)
def test_the_cli_never_prints_a_password_of_its_other_urls(
    args: list[str], named: bool, tmp_path: Path
) -> None:
    result = rollout(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert ("***" in result.stdout + result.stderr) is named  # the URL is named, masked


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__]


@pytest.mark.parametrize("url", bad_store_urls())
def test_rollout_url_errors_never_hold_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A URL that does not parse fails in Rollout(); an unreachable Redis at the first write.
    # (Which exception depends on the URL.)
    with pytest.raises(Exception) as raised, Rollout(url) as flags:  # noqa: PT011
        flags.activate("x")
    printed = "".join(traceback.format_exception(raised.value))
    assert SECRET not in printed
    for exc in _chain(raised.value):
        assert SECRET not in str(exc)
        assert SECRET not in repr(exc)
    logged = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert SECRET not in logged


def test_stats_and_repr_redact_a_store_url_of_ones_own() -> None:
    store = MemoryStore()
    store.url = f"postgres://app:{SECRET}@db/flags"
    with Rollout(store) as flags:
        assert flags.stats()["store"] == "postgres://app:***@db/flags"
        assert SECRET not in repr(flags)


# serve -----------------------------------------------------------------------------------------


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.skip("no redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--requirepass", SECRET, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_never_prints_or_serves_the_password(
    redis_with_password: int, tmp_path: Path
) -> None:
    url = f"redis://default:{SECRET}@127.0.0.1:{redis_with_password}/0?namespace=t"
    env = clean_env(ROLLOUT_TOKEN="ops=a-token-for-the-test")
    with serve("--http", "127.0.0.1:0", "--store", url, cwd=tmp_path, env=env,
               token="a-token-for-the-test") as served:  # fmt: skip
        with served.client() as client:
            client.put("/api/v1/flags/x/percentage", json={"percentage": 10}).raise_for_status()
            answers = [client.get(p).text for p in ("/api/v1/members", "/metrics", "/healthz")]
        assert "rollout_info{" in answers[1]
    assert served.returncode == 0
    log = served.stderr()
    assert "serving redis://default:***@127.0.0.1" in log  # the start-up line names the store
    for text in (*served.lines, log, *answers):
        assert SECRET not in text


def test_serve_with_a_sentinel_down_never_logs_the_password(tmp_path: Path) -> None:
    url = f"redis+sentinel://:{SECRET}@127.0.0.1:{closed_port()}/mymaster"
    with serve("--http", "127.0.0.1:0", "--store", url, cwd=tmp_path) as served:
        time.sleep(0.5)  # a few reconnection attempts logged
    log = served.stderr()
    assert "cannot read" in log or "Redis subscriber" in log
    assert SECRET not in log + "".join(served.lines)


def test_serves_log_lines_are_scrubbed_even_when_a_library_quotes_the_url(tmp_path: Path) -> None:
    # What redis-py or uvicorn might log one day: the URL in a message and in a traceback.
    url = f"redis://app:{SECRET}@127.0.0.1:6379/0?password={SECRET}"
    script = (
        "import logging, sys\n"
        "from rollout.cli._cluster import configure_logging\n"
        "url = sys.argv[1]\n"
        "configure_logging('serve', [url, None])\n"
        "logging.getLogger('redis').warning('lost %s', url)\n"
        "try:\n"
        "    raise ConnectionError(f'cannot reach {url}')\n"
        "except ConnectionError:\n"
        "    logging.getLogger('uvicorn.error').exception('failed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, url], cwd=tmp_path, env=clean_env(),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "lost redis://app:***@127.0.0.1:6379/0?password=***" in result.stderr
    assert "ConnectionError: cannot reach redis://app:***@" in result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize("command", [["members"], ["quarantine"], ["check-on", "chat"]])
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://ops:{secret}@127.0.0.1:{port}", "must not carry a user name or password"),
        ("http://127.0.0.1:{port}/?token={secret}", "no ?query or #fragment"),
    ],
)
def test_a_url_the_api_cannot_use_is_refused_saying_why(
    command: list[str], url: str, needle: str, tmp_path: Path
) -> None:
    """A running serve is there: the URL, not the server, is at fault. Before, urllib took
    ``ops:pw@127.0.0.1`` for a host name ("Name or service not known"), and a query sent the
    request to the dashboard's page ("the answer is not JSON")."""
    env = clean_env(ROLLOUT_TOKEN=f"ops={TOKEN}")
    with serve("--store", "memory://", "--http", "127.0.0.1:0", cwd=tmp_path, env=env) as served:
        port = served.url.rsplit(":", 1)[1].strip("/")
        given = url.format(secret=SECRET, port=port)
        result = rollout(*command, "--url", given, cwd=tmp_path, env=env)
    output = result.stdout + result.stderr
    print(output)
    assert SECRET not in output
    assert needle in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert result.returncode == (3 if command[0] == "check-on" else 2)
