"""``GET /events``: server-sent events naming the flags that changed, over a real socket."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest

from rollout import Rollout
from rollout.admin import _events, create_app
from rollout.testing import eventually

from .dashboard_server import serve

TOKEN = "s3cret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PATIENCE = 30.0  # seconds: how long a stream may stay silent before a test gives up


@pytest.fixture
def flags() -> Iterator[Rollout]:
    with Rollout() as rollout:
        yield rollout


@pytest.fixture
def url(flags: Rollout) -> Iterator[str]:
    with serve(create_app(flags, token=TOKEN)) as base:
        yield base


class Stream:
    """The lines of an open event stream, read as the test asks for them."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def wait_connected(self) -> None:
        """Returns once the server has subscribed (it then says so, in a comment) and said
        the count of changes so far (``hello``, kept as ``generation``)."""
        for line in self.lines:
            if line == ": connected":
                assert next(self.lines) == ""  # the end of that block
                event, data = self.next_event()
                assert event == "hello"
                assert next(self.lines) == ""
                self.generation = data["generation"]
                return

    def next_event(self) -> tuple[str, dict[str, Any]]:
        """The next ``(event, data)``; comments are skipped."""
        event = ""
        for line in self.lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                return event, json.loads(line.removeprefix("data: "))
        raise AssertionError("the stream ended")

    def changed(self, until: set[str]) -> set[str]:
        """Names announced, event after event, until every name in ``until`` has been."""
        seen: set[str] = set()
        while not until <= seen:
            event, data = self.next_event()
            assert event == "flags"
            seen |= set(data["changed"])
        return seen


def open_stream(client: httpx.Client, url: str) -> Generator[Stream]:
    with client.stream("GET", url + "/events", headers=BEARER) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        stream = Stream(response)
        stream.wait_connected()
        yield stream


@pytest.fixture
def stream(url: str) -> Iterator[Stream]:
    with httpx.Client(timeout=PATIENCE) as client:
        yield from open_stream(client, url)


def test_events_need_a_token_or_a_session(url: str) -> None:
    response = httpx.get(url + "/events")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_write_on_another_thread_is_announced(stream: Stream, flags: Rollout) -> None:
    threading.Thread(target=flags.activate, args=("chat",)).start()
    assert stream.next_event() == ("flags", {"changed": ["chat"]})


def test_a_change_through_the_api_is_announced(stream: Stream, url: str) -> None:
    response = httpx.put(
        url + "/api/v1/flags/chat/percentage", json={"percentage": 30}, headers=BEARER
    )
    assert response.status_code == 200
    assert stream.next_event() == ("flags", {"changed": ["chat"]})


def test_a_change_merged_from_another_node_is_announced(stream: Stream, flags: Rollout) -> None:
    with Rollout() as other:
        other.activate_users("beta", [1, 2])
        other.activate("signup")
        flags.merge(other.export())
    assert stream.changed(until={"beta", "signup"}) == {"beta", "signup"}


def test_many_changes_at_once_all_arrive(stream: Stream, flags: Rollout) -> None:
    names = {f"flag_{i}" for i in range(40)}
    writers = [threading.Thread(target=flags.activate, args=(name,)) for name in names]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert stream.changed(until=names) == names  # fewer events than writes is fine


def test_an_idle_stream_gets_keepalive_comments(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_events, "KEEPALIVE", 0.05)
    with httpx.Client(timeout=PATIENCE) as client:
        for stream in open_stream(client, url):
            assert next(stream.lines) == ": keepalive"
            assert next(stream.lines) == ""


def test_a_client_that_goes_away_is_unsubscribed(url: str, flags: Rollout) -> None:
    # Private, but the only way to see it: nothing outside can tell a stale subscriber.
    before = len(flags._pipeline.subscribers)
    with httpx.Client(timeout=PATIENCE) as client:
        for _ in open_stream(client, url):
            assert len(flags._pipeline.subscribers) == before + 1
    deadline = time.monotonic() + PATIENCE
    while len(flags._pipeline.subscribers) != before:  # the server notices the closed socket
        assert time.monotonic() < deadline, "still subscribed after the client went away"
        time.sleep(0.01)
    flags.activate("chat")  # and a write after that goes nowhere, without error
    assert flags.stats()["subscriber_errors"] == 0


def test_head_gives_the_headers_of_a_stream(url: str) -> None:
    response = httpx.head(url + "/events", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == b""


def test_stopping_the_server_ends_open_streams_cleanly(
    flags: Rollout, caplog: pytest.LogCaptureFixture
) -> None:
    ended: list[str] = []
    with httpx.Client(timeout=PATIENCE) as client:
        with serve(create_app(flags, token=TOKEN)) as url:
            streams = open_stream(client, url)
            stream = next(streams)

            def read_to_the_end() -> None:
                ended.extend(stream.lines)  # returns when the server ends the response

            reader = threading.Thread(target=read_to_the_end)
            reader.start()
        # The server has stopped: it cancelled the stream after its grace time.
        reader.join(timeout=PATIENCE)
        assert not reader.is_alive()
        streams.close()
    assert "Exception in ASGI application" not in caplog.text
    assert flags._pipeline.subscribers == []


def test_streams_past_the_limit_get_503_with_retry_after_and_a_closed_one_frees_its_place(
    flags: Rollout,
) -> None:
    with (
        serve(create_app(flags, token=TOKEN, max_event_streams=2)) as url,
        httpx.Client(timeout=PATIENCE) as client,
    ):
        first = open_stream(client, url)
        next(first)
        second = open_stream(client, url)
        next(second)
        refused = client.get(url + "/events", headers=BEARER)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["error"]["code"] == "unavailable"
        first.close()  # the dashboard closes: its place is free again

        def opens() -> bool:
            with client.stream("GET", url + "/events", headers=BEARER) as response:
                return response.status_code == 200

        eventually(opens, timeout=PATIENCE, what="a stream opening again")
        second.close()


def test_max_event_streams_must_be_a_positive_int(flags: Rollout) -> None:
    with pytest.raises(ValueError, match="max_event_streams must be a positive int, got 0"):
        create_app(flags, max_event_streams=0)


def _drawn_at(client: httpx.Client, url: str) -> int:
    page = client.get(url + "/", headers=BEARER)
    assert page.status_code == 200
    found = re.search(r'data-generation="(\d+)"', page.text)
    assert found is not None
    return int(found[1])


def test_a_page_and_its_stream_agree_on_the_changes_seen_so_far(flags: Rollout, url: str) -> None:
    # The page fetches nothing again when its stream opens at the count it was drawn at, and
    # fetches when they differ: a change made between the two.
    flags.activate("chat")
    with httpx.Client(timeout=PATIENCE) as client:
        drawn = _drawn_at(client, url)
        for stream in open_stream(client, url):
            assert stream.generation == drawn  # nothing changed: nothing to fetch
        drawn = _drawn_at(client, url)
        flags.activate("signup")  # after the page was drawn, before its stream opened
        for stream in open_stream(client, url):
            assert stream.generation > drawn
            flags.activate("later")  # after the stream opened: announced as an event
            assert stream.changed({"later"}) == {"later"}
