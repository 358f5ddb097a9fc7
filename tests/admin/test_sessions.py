"""Dashboard sessions against a real ``rollout serve``: signing out ends the session for every
copy of its cookie, and no crafted cookie gets anything but a 401 or the login page."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollout.admin._sessions import Sessions

from .serve_process import Served, serve_with_token

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve_with_token(tmp_path, TOKEN) as running:
        yield running


def sign_in(browser: httpx.Client) -> tuple[str, str]:
    """Sign in through the form: the session cookie and the CSRF token of the list page."""
    signed_in = browser.post("/login", data={"token": TOKEN, "next": "/"})
    assert signed_in.status_code == 303, signed_in.text
    cookie = signed_in.cookies["rollout_session"]
    page = browser.get("/", headers=as_cookie(cookie))
    assert page.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match is not None
    return cookie, match.group(1)


def as_cookie(value: str | bytes, csrf: str | None = None) -> dict[bytes, bytes]:
    """The headers of a request with the session cookie ``value`` (and a CSRF token)."""
    raw = value.encode() if isinstance(value, str) else value
    headers = {b"Cookie": b"rollout_session=" + raw}
    if csrf is not None:
        headers[b"X-CSRF-Token"] = csrf.encode()
    return headers


def test_a_copy_of_the_cookie_opens_nothing_once_signed_out(served: Served) -> None:
    with served.client(token=None) as browser:
        cookie, csrf = sign_in(browser)
        change = as_cookie(cookie, csrf)
        body = {"percentage": 10}
        assert browser.get("/api/v1/flags", headers=as_cookie(cookie)).status_code == 200
        assert browser.put("/api/v1/flags/chat/percentage", json=body, headers=change).is_success
        out = browser.post("/logout", headers=change)
        assert out.status_code == 303
        # What the attacker copied before the sign-out: reading, writing and pages all refused.
        assert browser.get("/api/v1/flags", headers=as_cookie(cookie)).status_code == 401
        written = browser.put(
            "/api/v1/flags/chat/percentage", json={"percentage": 90}, headers=change
        )
        assert written.status_code == 401
        page = browser.get("/flags/chat", headers=as_cookie(cookie))
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")
        assert browser.get("/events", headers=as_cookie(cookie)).status_code == 401
    with served.client() as api:
        assert api.get("/api/v1/flags/chat").json()["percentage"] == 10


def test_an_event_stream_opened_with_a_session_ends_when_the_session_does(
    served: Served,
) -> None:
    with served.client(token=None) as browser, served.client() as api:
        cookie, csrf = sign_in(browser)
        received: list[str] = []
        with browser.stream("GET", "/events", headers=as_cookie(cookie)) as events:
            lines = events.iter_lines()
            assert next(lines) == "retry: 2000"
            api.put("/api/v1/flags/chat/percentage", json={"percentage": 10})
            while "event: flags" not in received:  # the stream works while the session is open
                received.append(next(lines))
            assert browser.post("/logout", headers=as_cookie(cookie, csrf)).status_code == 303
            api.put("/api/v1/flags/chat/percentage", json={"percentage": 20})
            received.clear()
            for line in lines:  # ends when the server ends the stream
                received.append(line)
                assert line != "event: flags", "a signed-out session still hears of changes"
                assert received.count(": keepalive") < 3, received
        assert "event: flags" not in received


def test_the_session_cookie_lasts_12_hours_at_most_and_stays_from_scripts(served: Served) -> None:
    with served.client(token=None) as browser:
        signed_in = browser.post("/login", data={"token": TOKEN, "next": "/"})
        header = signed_in.headers["set-cookie"]
        assert "Max-Age=43200" in header  # 12 hours
        assert "HttpOnly" in header
        assert "SameSite=strict" in header


def _crafted() -> list[bytes]:
    admin = base64.urlsafe_b64encode(b"alice").decode().rstrip("=")
    now = int(time.time())
    return [
        f"{admin}.{now}.".encode() + "é".encode() * 32,  # the old format with a non-ASCII MAC
        "é".encode() * 43,  # the shape of an id, not ASCII
        b"\xff\xfe" * 20,  # not UTF-8
        b"x" * 8000,  # huge
        b"",
        b'""',
        b"!!!not-base64!!!",
        f"{admin}.{now}.{'0' * 64}".encode(),  # the old format, a wrong MAC
        secrets.token_urlsafe(32).encode(),  # the shape of an id, never issued
        b"a" * 43 + b"; rollout_session=" + b"b" * 43,
    ]


@pytest.mark.parametrize("cookie", _crafted(), ids=lambda c: repr(c[:24]))
def test_crafted_cookies_get_401_or_the_login_page_never_500(served: Served, cookie: bytes) -> None:
    with served.client(token=None) as browser:
        assert browser.get("/api/v1/flags", headers=as_cookie(cookie)).status_code == 401
        page = browser.get("/", headers=as_cookie(cookie))
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2F"
        body = {"percentage": 5}
        headers = as_cookie(cookie, "x")
        assert (
            browser.put("/api/v1/flags/chat/percentage", json=body, headers=headers).status_code
            == 401
        )
        # The public paths do not care about the cookie at all.
        assert browser.get("/login", headers=as_cookie(cookie)).status_code == 200
        assert browser.get("/healthz", headers=as_cookie(cookie)).status_code == 200
    assert "Traceback" not in served.stderr()


def test_a_session_ends_after_its_idle_time_and_after_its_lifetime() -> None:
    now = [0.0]
    sessions = Sessions(max_age=12 * 3600, idle=2 * 3600, clock=lambda: now[0])
    idle = sessions.start("alice")
    busy = sessions.start("alice")
    for _ in range(5):  # used every hour: stays open until its lifetime is over
        now[0] += 3600
        assert sessions.name(busy) == "alice"
    assert sessions.name(idle) is None  # five hours without a request
    now[0] += 6 * 3600 + 1
    assert sessions.name(busy) is None  # in use, but signed in over 12 hours ago


def test_sessions_are_bounded_and_end_by_name() -> None:
    sessions = Sessions(limit=3)
    first, *rest = [sessions.start("alice") for _ in range(4)]
    assert len(sessions) == 3
    assert sessions.name(first) is None  # the least recently used made room
    assert sessions.end_all("alice") == 3
    assert all(sessions.name(value) is None for value in rest)
