"""Reads that run the application's code (a group's predicate) have a deadline: a predicate that
hangs (a call to a service without a time-out) no longer holds its request, and so its
connection, for ever. Past ``code_timeout`` the request is answered 503 naming the flag and the
deadline, its connection is free again, and the thread still inside the predicate keeps its
place among the threads that run such code, so hung threads never pile up beyond that limit.

A real uvicorn server on a loopback socket, with ``serve``'s connection guard: a client allowed
only to evaluate flags could fill the connection cap with checks of a hung flag, and every other
client, operators included, was refused.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._code_threads import CODE_THREADS
from rollout.admin._connections import ConnectionGuard, guarded
from rollout.testing import eventually

from .dashboard_server import serve

ADMIN = "admin-secret-for-the-deadline-tests"
APP = "evaluate-secret-for-the-deadline-tests"
TOKENS = {"ops": ADMIN, "web": APP}
#: Short, so that tests are quick; a hung predicate never answers before it anyway.
DEADLINE = 0.5
#: Seconds any wait of these tests may take at most: never approached when all is well.
BOUND = 30.0


class Hung:
    """A predicate that hangs until ``release`` is set, counting the threads inside it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.calls = 0

    def __call__(self, _user: object) -> bool:
        with self._lock:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)
        try:
            self.release.wait(60)
            return True
        finally:
            with self._lock:
                self.inside -= 1


#: Requests of the hung flag ``hung`` for the user ``u<i>``: (method, path, JSON body or None).
HUNG_READS: dict[str, tuple[str, str, Any]] = {
    "check": ("GET", "/api/v1/flags/hung/check?user=u{i}", None),
    "explain": ("GET", "/api/v1/flags/hung/explain?user=u{i}", None),
    "evaluate": ("POST", "/api/v1/flags/hung/evaluate", {"context": {"targetingKey": "u{i}"}}),
    "ofrep": ("POST", "/ofrep/v1/evaluate/flags/hung", {"context": {"targetingKey": "u{i}"}}),
    "ofrep bulk": ("POST", "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "u{i}"}}),
}


def _send(port: int, method: str, path: str, body: Any = None, token: str = APP) -> socket.socket:
    """A new connection that has sent one request (its answer is read by :func:`_answer`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    data = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def _answer(sock: socket.socket) -> tuple[int, Any]:
    """The status and JSON body of the answer on ``sock`` (its timeout bounds each read)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, json.loads(body) if body else None


def _request(port: int, kind: str, i: int) -> socket.socket:
    method, path, body = HUNG_READS[kind]
    if body is not None:
        body = {"context": {"targetingKey": f"u{i}"}}
    # The evaluate endpoint is an operator's (the evaluation token reaches OFREP and the check).
    return _send(
        port, method, path.format(i=i), body, ADMIN if kind in ("explain", "evaluate") else APP
    )


def _metrics(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _assert_deadline_error(kind: str, status: int, body: Any) -> None:
    """503, naming the flag and the deadline: the API's error body, or OFREP's general one."""
    assert status == 503, (kind, status, body)
    if kind.startswith("ofrep"):
        message = body["errorDetails"]
    else:
        assert body["error"]["code"] == "unavailable", body
        message = body["error"]["message"]
    assert "flag 'hung'" in message, message
    assert f"{DEADLINE:g} s" in message, message


@pytest.fixture
def hung() -> Iterator[Hung]:
    predicate = Hung()
    try:
        yield predicate
    finally:  # no thread outlives the test
        predicate.release.set()
        eventually(lambda: predicate.inside == 0, BOUND, "the hung predicates returned")


def _flags(hung: Hung) -> Rollout:
    flags = Rollout()
    flags.define_group("stuck", hung)
    flags.activate_group("hung", "stuck")
    flags.activate("plain")
    return flags


def _app(flags: Rollout, timeout: float = DEADLINE) -> Any:
    return create_app(flags, tokens=TOKENS, scopes={"web": "evaluate"}, code_timeout=timeout)


def test_checks_of_a_hung_flag_do_not_lock_other_clients_out(hung: Hung) -> None:
    cap = 4
    with _flags(hung) as flags, serve(_app(flags), http=guarded(ConnectionGuard(cap))) as url:
        port = int(url.rsplit(":", 1)[1])
        # A client allowed only to evaluate fills every connection with a check of the flag.
        filling = [_request(port, "check", i) for i in range(cap)]
        try:
            eventually(lambda: hung.inside == cap, BOUND, "every check inside the predicate")

            def operator_write() -> bool:
                try:
                    with httpx.Client(base_url=url, timeout=BOUND) as client:
                        answer = client.put(
                            "/api/v1/flags/other/active",
                            json={"active": True},
                            headers={"Authorization": f"Bearer {ADMIN}"},
                        )
                except httpx.HTTPError:  # refused: every connection was busy
                    return False
                return answer.status_code == 200

            # Before: those connections stayed busy for ever, and busy ones are never evicted:
            # every new connection was refused (503), the operator's too.
            eventually(operator_write, BOUND, "the operator's write got through")
            assert flags.active("other")
            for sock in filling:
                _assert_deadline_error("check", *_answer(sock))
        finally:
            for sock in filling:
                sock.close()


def test_hung_threads_never_exceed_the_code_threads_however_many_requests(
    hung: Hung, caplog: pytest.LogCaptureFixture
) -> None:
    count = CODE_THREADS + 60
    caplog.set_level(logging.WARNING, logger="rollout")
    with (
        _flags(hung) as flags,
        serve(_app(flags), http=guarded(ConnectionGuard(count + 20))) as url,
    ):
        port = int(url.rsplit(":", 1)[1])
        sockets = [_request(port, "check", i) for i in range(count)]
        try:
            # Every request is answered at its deadline: the first ones while their thread hangs
            # in the predicate, the rest without a thread (none was free in time).
            for sock in sockets:
                _assert_deadline_error("check", *_answer(sock))
        finally:
            for sock in sockets:
                sock.close()
        eventually(lambda: hung.inside >= CODE_THREADS, BOUND, "the threads that began hang")
        # The hung threads kept their places: nothing else ever entered the predicate (with
        # anyio's abandon_on_cancel each request given up on let one more thread in).
        assert (hung.most, hung.inside) == (CODE_THREADS, CODE_THREADS)
        seen = _metrics(url)
        assert seen["rollout_code_timeouts_total"] == count
        assert seen["rollout_code_threads_overdue"] == CODE_THREADS
        warned = [r for r in caplog.records if "code_timeout" in r.getMessage()]
        assert len(warned) == 1, [r.getMessage() for r in warned]  # once per flag
        assert warned[0].levelno == logging.WARNING
        assert "'hung'" in warned[0].getMessage()

        hung.release.set()  # the service answers at last: the threads return their places
        eventually(
            lambda: _metrics(url)["rollout_code_threads_overdue"] == 0, BOUND, "threads back"
        )
        assert hung.calls == CODE_THREADS  # the requests that got no thread never ran it later
        answer = httpx.get(
            f"{url}/api/v1/flags/hung/check?user=late",
            headers={"Authorization": f"Bearer {APP}"},
            timeout=BOUND,
        )
        assert (answer.status_code, answer.json()["active"]) == (200, True)


@pytest.mark.parametrize("kind", list(HUNG_READS))
def test_every_read_that_runs_the_code_gets_the_deadline_error(hung: Hung, kind: str) -> None:
    with _flags(hung) as flags, serve(_app(flags), http=guarded(ConnectionGuard(16))) as url:
        port = int(url.rsplit(":", 1)[1])
        sock = _request(port, kind, 1)
        try:
            _assert_deadline_error(kind, *_answer(sock))
        finally:
            sock.close()
        # A flag that runs no code is answered as ever meanwhile, on the same server.
        plain = httpx.post(
            f"{url}/ofrep/v1/evaluate/flags/plain",
            json={"context": {"targetingKey": "u1"}},
            headers={"Authorization": f"Bearer {APP}"},
            timeout=BOUND,
        )
        assert (plain.status_code, plain.json()["value"]) == (200, True)


def test_predicates_returning_about_the_deadline_lose_no_thread(hung: Hung) -> None:
    """Whichever comes first, the deadline or the predicate's answer, each request gives its
    place back once: afterwards every one of the places is there to take."""
    count = CODE_THREADS + 20
    racing = threading.Event()

    def about_the_deadline(user: object) -> bool:
        if racing.is_set():
            racing.wait(DEADLINE)  # the deadline's time: sometimes before it, sometimes after
            return True
        return hung(user)

    racing.set()
    with Rollout() as flags:
        flags.define_group("stuck", about_the_deadline)
        flags.activate_group("hung", "stuck")
        with serve(_app(flags), http=guarded(ConnectionGuard(count + 20))) as url:
            port = int(url.rsplit(":", 1)[1])
            for _ in range(3):
                sockets = [_request(port, "check", i) for i in range(count)]
                try:
                    statuses = {_answer(sock)[0] for sock in sockets}
                finally:
                    for sock in sockets:
                        sock.close()
                assert statuses <= {200, 503}
            eventually(
                lambda: _metrics(url)["rollout_code_threads_overdue"] == 0, BOUND, "all returned"
            )
            racing.clear()  # now they hang: as many enter as there are places, all of them
            sockets = [_request(port, "check", i) for i in range(CODE_THREADS)]
            try:
                eventually(lambda: hung.inside == CODE_THREADS, BOUND, "every place taken")
            finally:
                hung.release.set()
                for sock in sockets:
                    sock.close()


def test_a_predicate_that_answers_in_time_answers_as_before() -> None:
    def staff(user: object) -> bool:
        return str(getattr(user, "id", user)) == "ann"  # a context as a user: its key

    with Rollout() as flags:
        flags.define_group("staff", staff)
        flags.activate_group("beta", "staff")
        flags.activate("plain")
        with (
            serve(_app(flags, timeout=BOUND), http=guarded(ConnectionGuard(16))) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=BOUND
            ) as client,
        ):
            for user, on in (("ann", True), ("bob", False)):
                check = client.get(f"/api/v1/flags/beta/check?user={user}")
                assert (check.status_code, check.json()["active"]) == (200, on)
                explained = client.get(f"/api/v1/flags/beta/explain?user={user}")
                assert explained.status_code == 200
                assert explained.json() == flags.explain("beta", user).to_dict()
                context = {"context": {"targetingKey": user}}
                evaluated = client.post("/api/v1/flags/beta/evaluate", json=context)
                assert (evaluated.status_code, evaluated.json()["value"]) == (200, on)
                single = client.post("/ofrep/v1/evaluate/flags/beta", json=context)
                assert (single.status_code, single.json()["value"]) == (200, on)
                bulk = client.post("/ofrep/v1/evaluate/flags", json=context)
                values = {f["key"]: f["value"] for f in bulk.json()["flags"]}
                assert (bulk.status_code, values) == (200, {"beta": on, "plain": True})
            assert _metrics(url)["rollout_code_timeouts_total"] == 0


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "10"])
def test_the_deadline_must_be_a_positive_number_of_seconds(bad: Any) -> None:
    with Rollout() as flags, pytest.raises(ValueError, match="code_timeout must be a positive"):
        create_app(flags, code_timeout=bad)
