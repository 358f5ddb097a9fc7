"""``rollout serve`` as a real process: the command ``make run`` runs, its HTTP server, its
refusals, its clean stop, and joining a cluster."""

from __future__ import annotations

import secrets
import signal
import socket
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout import Rollout
from rollout.testing.cluster import free_port

from .serve_process import clean_env, get_json, put, rollout, serve

TOKEN = "s3cret-token"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_make_runs_command_serves_the_default_sqlite_file_and_stops_cleanly(
    tmp_path: Path, stop: signal.Signals
) -> None:
    with Rollout(f"sqlite:///{tmp_path / 'rollout.db'}") as seed:  # the default store's file
        seed.activate("chat")
    port = free_port()
    with serve("--http", f"127.0.0.1:{port}", cwd=tmp_path, stop=stop) as served:
        assert served.lines == [f"Dashboard: http://127.0.0.1:{port}/"]
        with served.client() as http:
            assert get_json(http, "/healthz") == {"status": "ok", "flags": 1}
            listed = get_json(http, "/api/v1/flags")
            assert [(f["flag"], f["state"]) for f in listed["flags"]] == [("chat", "on")]
            assert get_json(http, "/api/v1/flags/chat/check")["active"] is True
            metrics = http.get("/metrics")
            assert metrics.status_code == 200
            families = {f.name for f in text_string_to_metric_families(metrics.text)}
            assert {"rollout_flags", "rollout_writes", "rollout_checks"} <= families
    assert served.returncode == 0, served.stderr()
    assert "Traceback" not in served.stderr()


def test_a_write_over_http_is_stored_and_attributed_to_the_tokens_name(tmp_path: Path) -> None:
    env = clean_env(ROLLOUT_TOKEN=f"alice={TOKEN}")
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token=TOKEN) as served:
        with served.client(token=None) as anonymous:
            refused = anonymous.put("/api/v1/flags/chat/percentage", json={"percentage": 30})
            assert refused.status_code == 401
            assert anonymous.get("/metrics").status_code == 401
            assert anonymous.get("/healthz").status_code == 200
        with served.client() as http:
            flag = put(http, "/flags/chat/percentage", {"percentage": 30})
            assert (flag["state"], flag["percentage"]) == ("partial", 30.0)
    assert served.returncode == 0, served.stderr()
    # The process closed its store: the change is in the file, and history names alice.
    shown = rollout("--json", "history", "chat", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert '"actor": "alice"' in shown.stdout
    assert '"percentage": 30.0' in shown.stdout


def test_it_refuses_a_public_address_without_a_token_before_opening_the_store(
    tmp_path: Path,
) -> None:
    result = rollout("serve", "--http", "0.0.0.0:0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("rollout: error: --http 0.0.0.0:0: not a loopback address and no token")
    assert "ROLLOUT_TOKEN" in line
    assert not (tmp_path / "rollout.db").exists()


def test_a_public_address_with_a_strong_token_is_served(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)  # a weak one is refused there (tests/admin/test_guessing.py)
    env = clean_env(ROLLOUT_TOKEN=token)
    with serve("--http", "0.0.0.0:0", cwd=tmp_path, env=env, token=token) as served:
        assert served.url.startswith("http://0.0.0.0:")
        port = served.url.rstrip("/").rsplit(":", 1)[1]
        served.url = f"http://127.0.0.1:{port}/"
        with served.client() as http:
            assert get_json(http, "/api/v1/flags")["flags"] == []
    assert served.returncode == 0, served.stderr()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "8080"], "--http must be HOST:PORT (port 0 to 65535), got '8080'"),
        (["--http", "127.0.0.1:99999"], "--http must be HOST:PORT"),
        (["--token", "a=x", "--token", "a=y"], "two tokens are named 'a'"),
        (["--code-timeout", "0"], "--code-timeout must be a positive number of seconds, got 0"),
        (["--code-timeout", "inf"], "--code-timeout must be a positive number of seconds"),
    ],
)
def test_bad_options_are_one_line_and_status_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = rollout("serve", *args, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line


@pytest.mark.parametrize("option", ["--token", "--eval-token"])
@pytest.mark.parametrize("listed", ["ops=sekrit-1,ci=sekrit-2", "sekrit-1,ci=sekrit-2"])
def test_a_comma_separated_list_given_to_a_token_option_is_refused_without_printing_a_secret(
    tmp_path: Path, option: str, listed: str
) -> None:
    # $ROLLOUT_TOKEN's list after --token was one token, its secret "sekrit-1,ci=sekrit-2":
    # nobody could sign in with the second, and nothing said so.
    result = rollout("serve", option, listed, cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{option} takes one [NAME=]SECRET, got a comma-separated list" in line
    assert "'ci'" in line
    assert f"repeat {option} for each" in line
    assert "sekrit" not in line


def test_an_address_in_use_is_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = rollout("serve", "--http", f"127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()[-1:]
    assert f"cannot listen on 127.0.0.1:{port} for HTTP" in line
    assert "Traceback" not in result.stderr


def test_with_listen_it_is_a_cluster_node_and_http_writes_reach_its_peers(
    tmp_path: Path,
) -> None:
    secret = secrets.token_urlsafe(32)
    peer_address = f"127.0.0.1:{free_port()}"
    env = clean_env(ROLLOUT_TOKEN=TOKEN, ROLLOUT_SECRET=secret)
    args = ("--listen", peer_address, "--http", "127.0.0.1:0")
    with serve(*args, cwd=tmp_path, env=env, token=TOKEN) as served:
        assert served.lines[0].endswith(f"listening on {peer_address}")  # as before HTTP came
        with Rollout(peers=[peer_address], secret=secret) as peer, served.client() as http:
            assert peer.wait_synced(30, peers=1)
            arrived = threading.Event()
            peer.subscribe(lambda names: arrived.set() if "chat" in names else None)
            put(http, "/flags/chat/active", {"active": True})
            assert arrived.wait(30)
            assert peer.active("chat")
            # And the other way: a change made on the peer shows in the API.
            peer.activate_percentage("search", 10)
            assert peer.wait_synced(30, peers=1)  # the node holds the change
            assert get_json(http, "/api/v1/flags/search")["percentage"] == 10.0
    assert served.returncode == 0, served.stderr()


def test_the_http_socket_gets_tcp_nodelay_on_every_connection() -> None:
    """Without it, Nagle's algorithm holds a response's body until the client ACKs its headers
    (delayed ACK: 40 ms per request): asyncio sets it only on sockets whose proto says TCP."""
    import asyncio

    from rollout.admin._serve import bind

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = bind("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted, 30)
            writer.close()
        return nodelay

    assert asyncio.run(accept_one()) == 1


def test_a_cli_write_to_the_same_sqlite_file_reaches_the_server_and_its_event_stream(
    tmp_path: Path,
) -> None:
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        with http.stream("GET", "/events") as events:
            assert events.status_code == 200
            wrote = rollout("activate", "from-the-cli", "--as", "carol", cwd=tmp_path)
            assert wrote.returncode == 0, wrote.stderr
            received = ""
            for count, chunk in enumerate(events.iter_text()):
                received += chunk
                if "from-the-cli" in received:
                    break
                assert count < 5, f"no event for the CLI's change: {received!r}"  # keepalives
        assert "event: flags" in received
        assert get_json(http, "/api/v1/flags/from-the-cli")["state"] == "on"
        [event] = get_json(http, "/api/v1/flags/from-the-cli/history")["events"]
        assert event["actor"] == "carol"
    assert served.returncode == 0, served.stderr()


def test_sessions_end_with_the_process_even_with_a_session_secret(tmp_path: Path) -> None:
    # Sessions are kept by the process (so that signing out ends them): a restart ends them,
    # whatever ROLLOUT_SESSION_SECRET says, and the browser is sent to sign in again.
    env = clean_env(ROLLOUT_TOKEN=f"alice={TOKEN}", ROLLOUT_SESSION_SECRET="sessions")
    with (
        serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token=TOKEN) as served,
        served.client(token=None) as browser,
    ):
        signed_in = browser.post("/login", data={"token": TOKEN, "next": "/"})
        cookie = {"Cookie": f"rollout_session={signed_in.cookies['rollout_session']}"}
        assert browser.get("/api/v1/flags", headers=cookie).status_code == 200
    with (
        serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token=TOKEN) as served,
        served.client(token=None) as browser,
    ):
        assert browser.get("/api/v1/flags", headers=cookie).status_code == 401
        assert browser.get("/", headers=cookie).headers["location"] == "/login?next=%2F"


def test_allowed_hosts_from_the_environment_are_served_without_a_token(tmp_path: Path) -> None:
    named = {"Host": f"flags.internal:{free_port()}"}
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        assert http.get("/api/v1/flags", headers=named).status_code == 403
    env = clean_env(ROLLOUT_ALLOWED_HOSTS="flags.internal, other.internal")
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env) as served, served.client() as http:
        assert http.get("/api/v1/flags", headers=named).status_code == 200
