"""Reads that run the application's code (a group's predicate) on worker threads never take the
threads that writes and the other reads need: however many of them a slow predicate holds, a
write, an explain of another flag and a page of users are answered.

In process (the ASGI app under httpx), as the thread hops are the app's own.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest

from rollout import Rollout
from rollout.admin import create_app

from .api_helpers import BEARER, TOKEN, asgi_client

pytestmark = pytest.mark.anyio

#: Requests that call the slow predicate for the user ``u<i>``: (method, url, JSON body).
SLOW: dict[str, tuple[str, str, Any]] = {
    "check": ("GET", "/api/v1/flags/slow/check?user=u{i}", None),
    "explain": ("GET", "/api/v1/flags/slow/explain?user=u{i}", None),
    "evaluate": ("POST", "/api/v1/flags/slow/evaluate", {"context": {"targetingKey": "u{i}"}}),
    "ofrep": ("POST", "/ofrep/v1/evaluate/flags/slow", {"context": {"targetingKey": "u{i}"}}),
    "ofrep bulk": ("POST", "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "u{i}"}}),
}


def _filled(body: Any, i: int) -> Any:
    if body is None:
        return None
    return {"context": {"targetingKey": body["context"]["targetingKey"].format(i=i)}}


@pytest.mark.parametrize("kind", list(SLOW))
async def test_slow_predicates_leave_threads_for_writes_and_other_reads(kind: str) -> None:
    release = threading.Event()
    entered: list[object] = []
    # More slow requests than the default limiter has threads (40, as many as the reads that
    # run code have of their own).
    threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
    with Rollout() as flags:

        def slow(user: object) -> bool:
            entered.append(user)
            release.wait(60)
            return False

        flags.define_group("slow", slow)
        flags.activate_group("slow", "slow")
        flags.activate_users("plain", ["ann"])
        method, url, body = SLOW[kind]
        async with (
            asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api,
            anyio.create_task_group() as tasks,
        ):

            async def ask(i: int) -> None:
                await api.request(method, url.format(i=i), json=_filled(body, i))

            for i in range(threads + 5):
                tasks.start_soon(ask, i)
            try:
                with anyio.fail_after(30):
                    while len(entered) < threads:  # every thread they may take is held
                        await anyio.sleep(0.01)
                with anyio.fail_after(10):  # before: each waited for a held thread
                    write = await api.put("/api/v1/flags/other/active", json={"active": True})
                    assert write.status_code == 200
                    explained = await api.get("/api/v1/flags/plain/explain?user=ann")
                    assert (explained.status_code, explained.json()["reason"]) == (200, "listed")
                    users = await api.get("/api/v1/flags/plain/users")
                    assert (users.status_code, users.json()["users"]) == (200, ["ann"])
            finally:
                release.set()
