"""``rollout check-on``, the Nagios/Icinga plugin, run as the monitoring agent runs it: the
installed command against a real ``rollout serve`` (and, for the answers a healthy server never
gives, against a small real HTTP server)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout

from ..admin.serve_process import Served, clean_env, rollout, serve

TOKEN = "monitoring-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One serve for the module, with a token, holding flags in every state."""
    directory = tmp_path_factory.mktemp("check-on")
    with Rollout(f"sqlite:///{directory / 'rollout.db'}") as seed:
        seed.activate("checkout")
        seed.activate("search")
        seed.activate_percentage("chat", 50)
        seed.activate_users("chat", ["1", "2"])
        seed.activate_group("chat", "all")
        seed.activate("payments")
        seed.exclude_user("payments", "42")  # 100% but one user excluded: not fully on
        seed.activate("old")
        seed.deactivate("old")
    env = clean_env(ROLLOUT_TOKEN=f"nagios={TOKEN}")
    with serve("--http", "127.0.0.1:0", cwd=directory, env=env, token=TOKEN) as served:
        yield served
    assert served.returncode == 0, served.stderr()


def check_on(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """Exit status and the one line of output (the plugin convention)."""
    result = rollout("check-on", *args, cwd=cwd, env=clean_env(**env))
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return result.returncode, lines[0]


def test_ok_when_every_named_flag_is_fully_on(server: Served, tmp_path: Path) -> None:
    status, line = check_on("checkout", "search", "--url", server.url, "--token", TOKEN,
                            cwd=tmp_path)  # fmt: skip
    assert status == 0
    assert line == "OK: checkout, search fully on | flags_on=2;;;0;2 flags_not_on=0;;0;0;2"


def test_critical_names_the_flags_that_are_not_fully_on(server: Served, tmp_path: Path) -> None:
    names = ["checkout", "chat", "payments", "old", "never-created"]
    status, line = check_on(*names, "--url", server.url, "--token", TOKEN, cwd=tmp_path)
    assert status == 2
    text, perfdata = line.split(" | ")
    assert text == (
        "CRITICAL: 4 of 5 not fully on: chat (partial: 50% of users, 2 users, 1 group), "
        "payments (partial: 100% of users, 1 excluded), old (off), never-created (missing)"
    )
    assert perfdata == "flags_on=1;;;0;5 flags_not_on=4;;0;0;5"


def test_the_url_and_token_come_from_the_environment(server: Served, tmp_path: Path) -> None:
    env = {"ROLLOUT_URL": server.url, "ROLLOUT_TOKEN": f"nagios={TOKEN}"}
    assert check_on("checkout", cwd=tmp_path, **env)[0] == 0
    assert check_on("chat", cwd=tmp_path, **env)[0] == 2


@pytest.mark.parametrize("token", [None, "wrong"])
def test_unknown_when_the_token_is_refused(
    server: Served, tmp_path: Path, token: str | None
) -> None:
    args = ["--token", token] if token else []
    status, line = check_on("checkout", "--url", server.url, *args, cwd=tmp_path)
    assert status == 3
    assert line.startswith(f"UNKNOWN: {server.url.rstrip('/')} refused the token (401 ")


def test_unknown_when_nothing_listens(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    status, line = check_on("checkout", "--url", url, cwd=tmp_path)
    assert (status, line) == (3, f"UNKNOWN: cannot reach {url}: Connection refused")


def test_unknown_when_the_server_does_not_answer_in_time(tmp_path: Path) -> None:
    # Listening (connections complete in the kernel's backlog) but never answering.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        status, line = check_on("checkout", "--url", url, "--timeout", "0.5", cwd=tmp_path)
    assert status == 3
    assert line.startswith(f"UNKNOWN: cannot reach {url}: ")
    assert "timed out" in line


class _Broken(http.server.BaseHTTPRequestHandler):
    """Answers as a server that is not (or not yet) a healthy rollout serve."""

    def do_GET(self) -> None:
        status = 500 if "/api/v1/flags/boom" in self.path else 404
        body = b"<html>oops</html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def broken() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_unknown_on_a_server_error(broken: str, tmp_path: Path) -> None:
    status, line = check_on("boom", "--url", broken, cwd=tmp_path)
    assert status == 3
    assert line == f"UNKNOWN: {broken} answered 500 for 'boom': Internal Server Error"


def test_a_404_that_is_not_the_apis_is_unknown_not_a_missing_flag(
    broken: str, tmp_path: Path
) -> None:
    # Not the JSON API's not_found (a wrong --url, a proxy's page): the flags' state is unknown.
    status, line = check_on("checkout", "--url", broken, cwd=tmp_path)
    assert status == 3
    assert line.startswith(f"UNKNOWN: {broken} answered 404 for 'checkout'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "the following arguments are required: NAME"),
        (["x", "--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["x", "--timeout", "0"], "--timeout must be a positive number, got 0.0"),
    ],
)
def test_usage_errors_are_unknown_too(args: list[str], needle: str, tmp_path: Path) -> None:
    status, line = check_on(*args, cwd=tmp_path)
    assert status == 3
    assert line.startswith("UNKNOWN: ")
    assert needle in line
