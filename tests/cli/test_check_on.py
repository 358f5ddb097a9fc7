"""``rollout check-on``, the Nagios/Icinga plugin, run as the monitoring agent runs it: the
installed command against a real ``rollout serve`` (and, for the answers a healthy server never
gives, against a small real HTTP server)."""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

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
    assert line == (
        "ROLLOUT OK: checkout, search fully on | flags_on=2;;;0;2 flags_not_on=0;;0;0;2 "
        "checkout=100%;;;0;100 search=100%;;;0;100"
    )


def test_critical_names_the_flags_that_are_not_fully_on(server: Served, tmp_path: Path) -> None:
    names = ["checkout", "chat", "payments", "old", "never-created"]
    status, line = check_on(*names, "--url", server.url, "--token", TOKEN, cwd=tmp_path)
    assert status == 2
    text, perfdata = line.split(" | ")
    assert text == (
        "ROLLOUT CRITICAL: 4 of 5 not fully on: chat (partial: 50% of users, 2 users, 1 group), "
        "payments (partial: 100% of users, 1 excluded), old (off), never-created (missing)"
    )
    assert perfdata == (
        "flags_on=1;;;0;5 flags_not_on=4;;0;0;5 checkout=100%;;;0;100 chat=50%;;;0;100 "
        "payments=100%;;;0;100 old=0%;;;0;100 'never-created'=U;;;0;100"
    )


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
    assert line.startswith(f"ROLLOUT UNKNOWN: {server.url.rstrip('/')} refused the token (401 ")


def test_unknown_when_nothing_listens(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    status, line = check_on("checkout", "--url", url, cwd=tmp_path)
    assert (status, line) == (3, f"ROLLOUT UNKNOWN: cannot reach {url}: Connection refused")


def test_unknown_when_the_server_does_not_answer_in_time(tmp_path: Path) -> None:
    # Listening (connections complete in the kernel's backlog) but never answering.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        status, line = check_on("checkout", "--url", url, "--timeout", "0.5", cwd=tmp_path)
    assert (status, line) == (3, f"ROLLOUT UNKNOWN: no answer from {url} within 0.5 s")


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
    assert line == f"ROLLOUT UNKNOWN: {broken} answered 500 for 'boom': Internal Server Error"


def test_a_404_that_is_not_the_apis_is_unknown_not_a_missing_flag(
    broken: str, tmp_path: Path
) -> None:
    # Not the JSON API's not_found (a wrong --url, a proxy's page): the flags' state is unknown.
    status, line = check_on("checkout", "--url", broken, cwd=tmp_path)
    assert status == 3
    assert line.startswith(f"ROLLOUT UNKNOWN: {broken} answered 404 for 'checkout'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "the following arguments are required: NAME"),
        (["x", "--timeout", "soon"], "--timeout: must be a positive number of seconds, got 'soon'"),
        (["x", "--timeout", "0"], "--timeout: must be a positive number of seconds, got '0'"),
        (["x", "-t", "1e308"], "--timeout: must be at most 86400 seconds, got '1e308'"),
        (["x", "-t", "86401"], "--timeout: must be at most 86400 seconds, got '86401'"),
        (["x", "--bogus"], "unrecognized arguments: --bogus"),
        (["--bogus", "x", "-v"], "unrecognized arguments: --bogus -v"),
        (["x", "-w", "ninety"], "-w/--warning: not a range (such as 90:, 10, ~:10"),
        (["x", "-c", "20:10"], "-c/--critical: range '20:10' starts after it ends"),
    ],
)
def test_usage_errors_are_unknown_too(args: list[str], needle: str, tmp_path: Path) -> None:
    status, line = check_on(*args, cwd=tmp_path)
    assert status == 3
    assert line.startswith("ROLLOUT UNKNOWN: rollout check-on: ")
    assert needle in line


# Monitoring Plugins guidelines: thresholds, perfdata, --version, --timeout ----------------------


def test_thresholds_judge_the_percentage_of_users(server: Served, tmp_path: Path) -> None:
    auth = ["--url", server.url, "--token", TOKEN]
    status, line = check_on("checkout", "chat", "-w", "90:", "-c", "50:", *auth, cwd=tmp_path)
    assert status == 1
    text, perfdata = line.split(" | ")
    assert text == (
        "ROLLOUT WARNING: 1 of 2 outside thresholds (% of users): chat (50%, warning 90:)"
    )
    assert perfdata.endswith("checkout=100%;90:;50:;0;100 chat=50%;90:;50:;0;100")
    status, line = check_on("chat", "old", "--warning", "90:", "--critical", "50:", *auth,
                            cwd=tmp_path)  # fmt: skip
    assert status == 2
    assert line.startswith("ROLLOUT CRITICAL: 1 of 2 outside thresholds (% of users): old (0%")
    # An inside-range (@) critical: alert while the flag is at 0 to 10%.
    status, line = check_on("chat", "-c", "@0:10", *auth, cwd=tmp_path)
    assert status == 0
    assert line.startswith("ROLLOUT OK: 1 of 1 within thresholds (% of users): chat (50%)")


@pytest.mark.parametrize("option", ["--version", "-V"])
def test_version_is_one_line_and_unknown(option: str, tmp_path: Path) -> None:
    """The guidelines: --version (and --help) SHOULD exit UNKNOWN, since nothing was checked."""
    status, line = check_on(option, cwd=tmp_path)
    assert status == 3
    assert line.startswith("rollout check-on ")


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_help_is_unknown(option: str, tmp_path: Path) -> None:
    result = rollout("check-on", option, "chat", cwd=tmp_path, env=clean_env())
    assert result.returncode == 3
    assert result.stdout.startswith("usage: rollout check-on")
    assert result.stderr == ""


class _AnyFlag(http.server.BaseHTTPRequestHandler):
    """An API answering every flag as fully on, whatever its name (the naming rule is not this
    test's business: a server of another version may hold names this one refuses)."""

    def do_GET(self) -> None:
        name = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
        body = json.dumps({"name": name, "state": "on", "percentage": 100}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def parse_perfdata(perfdata: str) -> list[tuple[str, str]]:
    """(label, rest) pairs, read as the guidelines define them: a label in single quotes may
    hold spaces and '' for a quote; anything else runs to the '='."""
    pattern = re.compile(r"(?:'((?:[^']|'')*)'|([^'= ]+))=(\S*)(?: |$)")
    items, position = [], 0
    while position < len(perfdata):
        match = pattern.match(perfdata, position)
        assert match is not None, f"perfdata breaks at {perfdata[position:]!r}"
        quoted, plain, rest = match.groups()
        items.append((quoted.replace("''", "'") if quoted is not None else plain, rest))
        position = match.end()
    return items


def test_no_flag_name_can_break_the_output(tmp_path: Path) -> None:
    names = ["a|b", "it's", "x=y", "with space", "'quoted'", "50%", "a;b"]
    with http_server(_AnyFlag) as url:
        status, line = check_on(*names, "--url", url, cwd=tmp_path)
    assert status == 0
    text, perfdata = line.split(" | ")  # exactly one "|": none from a name
    assert text == "ROLLOUT OK: all 7 flags fully on"
    labels = [label for label, _ in parse_perfdata(perfdata)]
    assert labels == ["flags_on", "flags_not_on", "a_b", "it's", "x_y", "with space",
                      "'quoted'", "50%", "a;b"]  # fmt: skip
    assert all(rest == "100%;;;0;100" for _, rest in parse_perfdata(perfdata)[2:])


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers one byte of headers every 0.2 s, for ever: each read is quick, the answer never
    ends (a per-read time-out never fires)."""

    stop = threading.Event()

    def do_GET(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while not self.stop.wait(0.2):
            try:
                self.wfile.write(b"X")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_timeout_bounds_the_whole_run(tmp_path: Path) -> None:
    _Trickle.stop.clear()
    try:
        with http_server(_Trickle) as url:
            started = time.monotonic()
            status, line = check_on("a", "b", "--url", url, "--timeout", "1", cwd=tmp_path)
            elapsed = time.monotonic() - started
    finally:
        _Trickle.stop.set()
    print(f"check-on with --timeout 1 against a trickling server ended after {elapsed:.2f} s")
    assert (status, line) == (3, f"ROLLOUT UNKNOWN: no answer from {url} within 1 s")
    assert elapsed < 20  # --timeout 1 plus a process start on a busy machine


# Credentials never cross origins ----------------------------------------------------------------


class _Capture(http.server.BaseHTTPRequestHandler):
    """Records the Authorization header of every request, and answers a flag."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        _AnyFlag.do_GET(self)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:
        pass


def redirector(target: str) -> type[http.server.BaseHTTPRequestHandler]:
    """A server that redirects every request to ``target`` + the path (for ``target`` "",
    within itself: ``/old/...`` to ``/...``, and answers the flag there)."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not target and not self.path.startswith("/old/"):
                _AnyFlag.do_GET(self)  # type: ignore[arg-type]
                return
            self.send_response(302)
            self.send_header("Location", f"{target}{self.path.removeprefix('/old')}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Redirect


@pytest.mark.parametrize("where", ["another port", "the serve"])
def test_the_token_never_follows_a_redirect_to_another_origin(
    server: Served, tmp_path: Path, where: str
) -> None:
    _Capture.seen.clear()
    with http_server(_Capture) as capture:
        target = capture if where == "another port" else server.url.rstrip("/")
        with http_server(redirector(target)) as url:
            status, line = check_on("checkout", "--url", url, "--token", TOKEN, cwd=tmp_path)
    assert status == 3
    assert line == (
        f"ROLLOUT UNKNOWN: {url}/api/v1/flags/checkout redirected (302) to "
        f"{target}/api/v1/flags/checkout, another origin: not followed (the token is only sent "
        "where --url points)"
    )
    assert _Capture.seen == []  # not even asked without the token


def test_a_redirect_within_the_origin_is_followed(tmp_path: Path) -> None:
    with http_server(redirector("")) as url:
        status, line = check_on("checkout", "--url", f"{url}/old", cwd=tmp_path)
    assert (status, line.split(" | ")[0]) == (0, "ROLLOUT OK: checkout fully on")


@pytest.mark.parametrize(
    "url", ["http://ops:hunter2-Zq9@127.0.0.1:{port}", "http://127.0.0.1:{port}/?token=hunter2-Zq9"]
)
def test_a_password_in_the_url_is_never_printed(url: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    status, line = check_on("checkout", "--url", url.format(port=port), cwd=tmp_path)
    assert status == 3
    assert "hunter2-Zq9" not in line
    assert "***" in line
