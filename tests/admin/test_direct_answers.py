"""Routes that answer directly (the API's read-only paths, the check among them, and OFREP's
single evaluation: ``RawRoute(direct=...)``, called by the app's gate past Starlette's request
wrappers) answer exactly as their Starlette endpoints do; and the check runs a group's
predicate off the event loop, unless a rule tested before the groups decides."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import zlib
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from rollout import Rollout
from rollout._core import specialize
from rollout.admin import create_app
from rollout.admin._api_call import _PARSED, PARSED_SIZE
from rollout.admin._routing import RawRoute

from .api_helpers import BEARER, TOKEN, asgi_client

pytestmark = pytest.mark.anyio

#: Requests to the directly answered routes: answers, refusals, errors of every kind.
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/v1/flags/chat/check?user=42", {}),
    ("GET", "/api/v1/flags/chat/check", {}),
    ("HEAD", "/api/v1/flags/chat/check?user=7", {}),
    ("GET", "/api/v1/flags/partial/check?user=1", {}),
    ("GET", "/api/v1/flags/partial/check?user=u1", {}),
    ("GET", "/api/v1/flags/nobody/check?user=1", {}),
    ("GET", "/api/v1/flags/a%2Fb/check?user=%E2%82%AC", {}),
    ("GET", "/api/v1/flags/bad%0Aname/check?user=1", {}),
    ("GET", "/api/v1/flags/chat/check?user=", {}),
    ("GET", "/api/v1/flags/chat/check?user=a%00b", {}),
    ("GET", "/api/v1/flags/chat", {}),
    ("GET", "/api/v1/flags/missing", {}),
    ("GET", "/api/v1/flags/missing/history", {}),
    ("GET", "/api/v1/flags?limit=1", {}),
    ("GET", "/api/v1/groups", {}),
    ("POST", "/ofrep/v1/evaluate/flags/chat", {"json": {"context": {"targetingKey": "42"}}}),
    ("POST", "/ofrep/v1/evaluate/flags/missing", {"json": {"context": {}}}),
    ("POST", "/ofrep/v1/evaluate/flags/chat", {"content": b"{not json"}),
    ("POST", "/ofrep/v1/evaluate/flags/chat", {"json": {"context": {"targetingKey": 7}}}),
    ("POST", "/ofrep/v1/evaluate/flags/chat", {"content": b"x" * 2000}),
    ("POST", "/ofrep/v1/evaluate/flags/chat", {"content": b""}),
]


_TIME = re.compile(rb'"\d{4}-\d\d-\d\dT[\d:.]+Z"')


def _seeded() -> Rollout:
    flags = Rollout()
    flags.activate("chat")
    flags.activate("a/b")
    flags.activate_percentage("partial", 30)
    flags.activate_user("partial", "u1")
    flags.activate("nobody")
    flags.deactivate("nobody")
    return flags


async def _answers(direct: bool) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    with _seeded() as flags:
        app = create_app(flags, token=TOKEN, max_body=1000)
        if not direct:
            for route in app.router.routes:
                if isinstance(route, RawRoute):
                    route.direct = None
        answers = []
        async with asgi_client(app, headers=BEARER) as client:
            for method, url, sent in REQUESTS:
                response = await client.request(method, url, **sent)
                headers = sorted((k, v) for k, v in response.headers.items() if k != "etag")
                # Two apps, made moments apart: their times (when changed, checked) differ.
                body = _TIME.sub(b"<time>", response.content)
                answers.append((response.status_code, headers, body))
        return answers


async def test_a_direct_answer_is_the_endpoints_answer() -> None:
    direct, through_starlette = await _answers(True), await _answers(False)
    for request, mine, theirs in zip(REQUESTS, direct, through_starlette, strict=True):
        assert mine == theirs, request
    statuses = {status for status, _, _ in direct}
    assert {200, 400, 404, 413, 422} <= statuses  # every kind of answer was compared


async def test_an_error_in_a_direct_answer_is_the_servers_500() -> None:
    with Rollout() as flags:
        flags.activate("chat")
        app = create_app(flags, token=TOKEN)

        def broken(*_args: object) -> bool:
            raise RuntimeError("a bug")

        flags.active = broken  # type: ignore[assignment]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/api/v1/flags/chat/check?user=1", headers=BEARER)
        assert (response.status_code, response.text) == (500, "Internal Server Error")


async def test_a_flag_names_parse_is_remembered_only_when_it_passes() -> None:
    with Rollout() as flags:
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            _PARSED.clear()
            assert (await api.get("/api/v1/flags/bad%0Aname/check")).status_code == 422
            assert not _PARSED
            for i in range(PARSED_SIZE + 10):
                assert (await api.get(f"/api/v1/flags/f{i}/check")).status_code == 200
            assert 0 < len(_PARSED) <= PARSED_SIZE
            # Still refused the second time: a refusal is never remembered as a name.
            assert (await api.get("/api/v1/flags/bad%0Aname/check")).status_code == 422


async def test_the_check_answers_each_state_the_flag_has_had() -> None:
    with Rollout() as flags:
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:

            async def state() -> str:
                answer = (await api.get("/api/v1/flags/chat/check?user=1")).json()
                return str(answer["state"])

            flags.activate("chat")
            assert await state() == "on"
            flags.activate_percentage("chat", 10)
            assert await state() == "partial"
            flags.deactivate("chat")
            assert await state() == "off"
            flags.activate("chat")
            assert await state() == "on"


async def test_the_check_runs_a_groups_predicate_off_the_event_loop() -> None:
    seen: list[threading.Thread] = []
    with Rollout() as flags:

        def staff(user: object) -> bool:
            seen.append(threading.current_thread())
            return user == "ann"

        flags.define_group("staff", staff)
        flags.activate_group("chat", "staff")
        loop_thread = threading.current_thread()
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            answer = (await api.get("/api/v1/flags/chat/check?user=ann")).json()
            assert (answer["active"], answer["state"]) == (True, "partial")
            assert (await api.get("/api/v1/flags/chat/check?user=bob")).json()["active"] is False
        assert seen
        assert all(thread is not loop_thread for thread in seen)


async def test_a_check_a_rule_before_the_groups_decides_does_not_wait_for_a_worker_thread() -> None:
    """A user inside the percentage, listed or excluded is answered on the event loop: such a
    check calls no predicate, so it does not queue behind slow ones for a worker thread."""
    entered, release = threading.Event(), threading.Event()
    with Rollout() as flags:

        def slow(user: object) -> bool:
            entered.set()
            release.wait(30)
            return False

        flags.define_group("slow", slow)
        flags.activate_group("chat", "slow")
        flags.activate_percentage("chat", 50)
        flags.activate_users("chat", ["listed"])
        flags.exclude_user("chat", "excluded")
        inside = next(f"u{i}" for i in range(100) if zlib.crc32(f"u{i}".encode()) < 2**31 - 2**28)
        outside = next(f"u{i}" for i in range(100) if zlib.crc32(f"u{i}".encode()) > 2**31 + 2**28)
        limiter = anyio.to_thread.current_default_thread_limiter()
        tokens = limiter.total_tokens
        limiter.total_tokens = 1  # one worker thread, which the slow predicate holds
        try:
            async with (
                asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api,
                anyio.create_task_group() as tasks,
            ):
                tasks.start_soon(api.get, f"/api/v1/flags/chat/check?user={outside}")
                await anyio.to_thread.run_sync(entered.wait, 30, limiter=anyio.CapacityLimiter(1))
                try:
                    with anyio.fail_after(10):  # before: waited for the held thread
                        for user, active in ((inside, True), ("listed", True), ("excluded", False)):
                            answer = await api.get(f"/api/v1/flags/chat/check?user={user}")
                            assert answer.json()["active"] is active, user
                finally:
                    release.set()
        finally:
            limiter.total_tokens = tokens


async def test_a_write_between_the_decision_and_the_answer_runs_no_predicate_on_the_loop() -> None:
    """The check decides on one reading of the flag whether a predicate may run; a write from
    another thread may land before it answers (here, made exactly then: from a profile hook, at
    the first return from rollout._core.specialize, the decision). The answer must be the one
    decided on: checking the flag again would call the predicate, on the event loop."""
    on_loop: list[object] = []
    with Rollout() as flags:

        def staff(user: object) -> bool:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return False
            on_loop.append(user)
            return False

        flags.define_group("staff", staff)
        flags.activate_group("chat", "staff")
        flags.activate_user("chat", "ann")
        written: list[bool] = []

        def write_after_the_decision(frame: FrameType, event: str, _arg: object) -> None:
            decided = event == "return" and frame.f_code.co_filename == specialize.__file__
            if decided and not written:
                written.append(True)
                flags.deactivate_user("chat", "ann")

        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            sys.setprofile(write_after_the_decision)
            try:
                answer = (await api.get("/api/v1/flags/chat/check?user=ann")).json()
            finally:
                sys.setprofile(None)
        assert written
        assert not on_loop, "the predicate ran on the event loop"
        assert answer["active"] is True  # ann was listed in the version decided on
        assert flags.active("chat", "ann") is False  # and is not any more
