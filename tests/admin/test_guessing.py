"""Guessing tokens against a real ``rollout serve``: wrong tokens are throttled per client
address and in total (429 with Retry-After, the token unchecked), and a weak token is refused on a
public address.

Every address is on loopback: Linux routes all of 127/8 to ``lo``, so a client socket bound to
127.0.0.2 is another client to the server.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .serve_process import Served, clean_env, rollout, serve, serve_with_token

TOKEN = secrets.token_urlsafe(32)
#: Requests per hammering loop: bounded, and far more than the throttle lets through.
GUESSES = 200


def client_from(served: Served, address: str, token: str | None = None) -> httpx.Client:
    """A client whose connections come from ``address`` (a loopback address of this host)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=served.url.rstrip("/"),
        headers=headers,
        timeout=30.0,
        transport=httpx.HTTPTransport(local_address=address),
    )


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends on ``sock`` until it closes it (then closed here too)."""
    sock.settimeout(30)
    with sock:
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
        return bytes(received)


def hammer(client: httpx.Client, send: str) -> tuple[list[httpx.Response], float]:
    """``GUESSES`` wrong guesses through ``send`` ("api" or "login"); the responses, seconds."""
    started = time.monotonic()
    responses = []
    for n in range(GUESSES):
        guess = f"guess-{n}-{secrets.token_hex(4)}"
        if send == "api":
            responses.append(
                client.get("/api/v1/flags", headers={"Authorization": f"Bearer {guess}"})
            )
        else:
            responses.append(client.post("/login", data={"token": guess, "next": "/"}))
    return responses, time.monotonic() - started


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve_with_token(tmp_path, TOKEN) as running:
        yield running


@pytest.mark.parametrize("send", ["api", "login"])
def test_wrong_tokens_from_one_address_are_throttled_and_a_right_one_from_it_too(
    served: Served, send: str
) -> None:
    with client_from(served, "127.0.0.1") as attacker:
        responses, seconds = hammer(attacker, send)
        answered = [r for r in responses if r.status_code == 401]
        throttled = [r for r in responses if r.status_code == 429]
        assert len(answered) + len(throttled) == GUESSES
        rate = len(answered) / seconds
        print(f"{send}: {len(answered)} of {GUESSES} guesses answered in {seconds:.2f} s")
        # A burst of 10, then one every 2 s: the loop is far too short for many more.
        assert 10 <= len(answered) <= 10 + seconds / 2 + 1, rate
        for response in throttled:
            assert int(response.headers["retry-after"]) >= 1
            if send == "api":
                assert response.json()["error"]["code"] == "too_many_requests"
            else:
                assert re.search(
                    r"Too many wrong tokens have been tried\. Wait [12] seconds", response.text
                )
                assert "set-cookie" not in response.headers
        # The right token from the throttled address is not checked: no oracle.
        if send == "api":
            right = attacker.get("/api/v1/flags", headers={"Authorization": f"Bearer {TOKEN}"})
        else:
            right = attacker.post("/login", data={"token": TOKEN, "next": "/"})
        assert right.status_code == 429
        assert "set-cookie" not in right.headers
    # One line in the log, not one per guess: a guesser must not fill the disk.
    logged = [line for line in served.stderr().splitlines() if "wrong token(s)" in line]
    assert len(logged) == 1, logged
    assert "the latest from 127.0.0.1" in logged[0]
    # Another address is another client: the operator is not locked out by the attacker.
    with client_from(served, "127.0.0.2", TOKEN) as operator:
        assert operator.get("/api/v1/flags").status_code == 200
        signed_in = operator.post("/login", data={"token": TOKEN, "next": "/"})
        assert signed_in.status_code == 303
        assert "rollout_session" in signed_in.cookies


def test_guesses_from_many_addresses_are_answered_at_the_global_rate_and_only_delay_others(
    served: Served,
) -> None:
    with client_from(served, "127.0.0.2", TOKEN) as operator:
        assert operator.get("/api/v1/flags").status_code == 200  # known from before the attack
    answered = 0
    started = time.monotonic()
    for n in range(10, 25):  # 15 addresses, one after the other, each stopped after 11 tries
        with client_from(served, f"127.0.0.{n}") as attacker:
            for _ in range(11):
                bad = {"Authorization": f"Bearer {secrets.token_hex(8)}"}
                answered += attacker.get("/api/v1/flags", headers=bad).status_code == 401
    stopped = time.monotonic()
    seconds = stopped - started
    print(f"{answered} of 165 guesses from 15 addresses answered in {seconds:.2f} s")
    assert answered <= 100 + seconds * 10 + 1  # 100 at once in total, then 10 a second

    # 80 at once from new addresses (raw sockets, all connected before any request is sent):
    # they wait their turn, one each tenth of a second, and those that would wait over 5 s are
    # refused with the time to come back.
    host, port = served.url.removeprefix("http://").strip("/").split(":")
    sockets = []
    for n in range(1, 81):
        sock = socket.socket()
        sock.bind((f"127.0.1.{n}", 0))
        sock.connect((host, int(port)))
        sockets.append(sock)
    for sock in sockets:
        sock.sendall(
            f"GET /api/v1/flags HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            f"Authorization: Bearer {secrets.token_hex(8)}\r\n\r\n".encode()
        )
    # What drained from the global bucket since the guessing above, and 5 s of line.
    bound = 10 * (time.monotonic() - stopped) + 5 / 0.1 + 3
    with client_from(served, "127.0.0.2", TOKEN) as operator:
        began = time.monotonic()
        assert operator.get("/api/v1/flags").status_code == 200  # not in that line
        print(f"the known operator answered in {time.monotonic() - began:.3f} s")
    answers = [read_all(sock) for sock in sockets]
    statuses = sorted(int(answer.split(b" ", 2)[1]) for answer in answers)
    print(f"80 guesses at once: {statuses.count(401)} answered, {statuses.count(429)} refused")
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= bound
    for answer in answers:
        if b" 429 " in answer.split(b"\r\n", 1)[0]:
            assert re.search(rb"\r\nretry-after: [1-9][0-9]*\r\n", answer.lower()), answer
            assert b'"too_many_requests"' in answer
    # A newcomer with the right token is delayed, not locked out: it waits its turn, or is told
    # when to come back while the line is long.
    began = time.monotonic()
    with client_from(served, "127.0.0.99", TOKEN) as newcomer:
        for _ in range(5):
            reply = newcomer.get("/api/v1/flags")
            if reply.status_code != 429:
                break
            time.sleep(int(reply.headers["retry-after"]))
        assert reply.status_code == 200
    print(f"a newcomer got in after {time.monotonic() - began:.2f} s")


def test_bookkeeping_is_bounded_however_many_addresses_guess() -> None:
    from rollout.admin._throttle import Throttle

    now = [0.0]
    throttle = Throttle(max_clients=1_000, clock=lambda: now[0])
    for n in range(50_000):  # one guess from each of 50,000 IPv6 hosts (each its own /64)
        throttle.failed(f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1")
    assert throttle.clients == 1_000
    # One host's many addresses in its /64 are one client.
    for n in range(20):
        throttle.failed(f"2001:db8:ffff:1::{n:x}")
    assert throttle.wait("2001:db8:ffff:1::abcd") > 0
    now[0] += 3600  # every bucket has drained: one more failure forgets them all
    throttle.failed("192.0.2.1")
    assert throttle.clients == 1


@pytest.mark.anyio
async def test_while_many_guess_each_address_waits_its_turn_once_and_the_line_is_bounded() -> None:
    from rollout.admin._throttle import Throttle

    # The throttle's clock stands still: what it decides is then the same on a machine that
    # stalls this test for 30 ms (which used to leave no line longer than max_delay). Its waits
    # are still slept for real.
    throttle = Throttle(global_burst=2, global_interval=0.05, max_delay=0.12, clock=lambda: 0.0)
    throttle.failed("192.0.2.1")
    throttle.failed("192.0.2.2")  # the global bucket is full
    first = asyncio.ensure_future(throttle.turn("192.0.2.3"))
    second = asyncio.ensure_future(throttle.turn("192.0.2.4"))
    await asyncio.sleep(0)  # both are in line now, 0.05 s apart
    assert await throttle.turn("192.0.2.3") > 0  # one place in line per address
    assert await throttle.turn("192.0.2.5") > 0  # the line is longer than max_delay
    assert await first == 0
    throttle.succeeded("192.0.2.3")
    assert await second == 0
    throttle.failed("192.0.2.4")  # its slot was taken in line: not counted twice
    throttle.succeeded("192.0.2.3")
    assert await throttle.turn("192.0.2.3") == 0  # proved a token: skips the line


def test_a_weak_token_is_refused_on_a_public_address_before_opening_the_store(
    tmp_path: Path,
) -> None:
    for weak in ["s3cret-token", "correct-horse-battery-staple", "0123456789abcdef" * 2]:
        env = clean_env(ROLLOUT_TOKEN=f"ci={weak}")
        result = rollout("serve", "--http", "0.0.0.0:0", cwd=tmp_path, env=env)
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert re.fullmatch(
            r"rollout: error: --http 0\.0\.0\.0:0: the token named 'ci' \(--token or "
            r"\$ROLLOUT_TOKEN\) is too weak for a non-loopback address: about \d+ bits of "
            r"entropy, at least 128 are required; make one with `rollout token`",
            line,
        ), line
        assert weak not in result.stderr
        assert not (tmp_path / "rollout.db").exists()
    # On loopback a short token is the user's business (nobody else can reach it).
    env = clean_env(ROLLOUT_TOKEN="s3cret")
    with (
        serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token="s3cret") as running,
        running.client() as http,
    ):
        assert http.get("/api/v1/flags").status_code == 200


def test_rollout_token_prints_a_strong_token_that_a_public_address_accepts(
    tmp_path: Path,
) -> None:
    printed = rollout("token", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert rollout("token", cwd=tmp_path).stdout.strip() != token
    env = clean_env(ROLLOUT_TOKEN=token)
    with serve("--http", "0.0.0.0:0", cwd=tmp_path, env=env, token=token) as running:
        port = running.url.rstrip("/").rsplit(":", 1)[1]
        running.url = f"http://127.0.0.1:{port}/"
        with running.client() as http:
            assert http.get("/api/v1/flags").status_code == 200
