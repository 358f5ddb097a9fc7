"""``GET /events`` on named rules: ``event: rules`` names the rules that changed, from the API,
another process or this one, and never as flags; the pages' change count includes them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._events import EventStream

from .dashboard_server import serve
from .test_dashboard_events import BEARER, PATIENCE, TOKEN, Stream, open_stream

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}


@pytest.fixture
def flags() -> Iterator[Rollout]:
    with Rollout() as rollout:
        yield rollout


@pytest.fixture
def url(flags: Rollout) -> Iterator[str]:
    with serve(create_app(flags, token=TOKEN)) as base:
        yield base


@pytest.fixture
def stream(url: str) -> Iterator[Stream]:
    with httpx.Client(timeout=PATIENCE) as client:
        yield from open_stream(client, url)


def test_a_rule_defined_through_the_api_is_announced_as_a_rule(stream: Stream, url: str) -> None:
    response = httpx.put(url + "/api/v1/rules/pro", json={"logic": PRO}, headers=BEARER)
    assert response.status_code == 200, response.text
    assert stream.next_event() == ("rules", {"changed": ["pro"]})


def test_a_removed_rule_is_announced(flags: Rollout, url: str) -> None:
    flags.define_rule("pro", PRO)
    with httpx.Client(timeout=PATIENCE) as client:
        for stream in open_stream(client, url):
            response = client.delete(url + "/api/v1/rules/pro", headers=BEARER)
            assert response.status_code == 200, response.text
            assert stream.next_event() == ("rules", {"changed": ["pro"]})


def test_a_segment_rule_change_names_the_rule_then_the_flag(flags: Rollout, url: str) -> None:
    flags.activate_group("chat", "pro")
    with httpx.Client(timeout=PATIENCE) as client:
        for stream in open_stream(client, url):
            flags.define_rule("pro", PRO)
            assert stream.next_event() == ("rules", {"changed": ["pro"]})
            assert stream.next_event() == ("flags", {"changed": ["chat"]})


def test_a_rule_changed_by_another_process_is_announced(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'flags.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    with (
        Rollout(store) as flags,
        serve(create_app(flags, token=TOKEN)) as base,
        httpx.Client(timeout=PATIENCE) as client,
    ):
        for stream in open_stream(client, base):
            done = subprocess.run(
                [sys.executable, "-m", "rollout", "--store", store,
                 "define-rule", "pro", json.dumps(PRO)],
                capture_output=True, text=True, timeout=60, env=env, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            flags.refresh()  # what a worker sharing the file does every few seconds
            assert stream.next_event() == ("rules", {"changed": ["pro"]})


def _drawn_at(client: httpx.Client, url: str) -> int:
    page = client.get(url + "/rules", headers=BEARER)
    assert page.status_code == 200
    found = re.search(r'data-generation="(\d+)"', page.text)
    assert found is not None
    return int(found[1])


def test_the_rules_page_and_its_stream_count_rule_changes(flags: Rollout, url: str) -> None:
    # A rule changed between drawing the rules page and opening its stream: the counts differ,
    # so the page fetches the rules again.
    with httpx.Client(timeout=PATIENCE) as client:
        drawn = _drawn_at(client, url)
        flags.define_rule("pro", PRO)
        for stream in open_stream(client, url):
            assert stream.generation > drawn


def test_a_stream_without_rules_never_names_a_rule(flags: Rollout) -> None:
    # OFREP's stream is one such: its clients know flags only.
    with (
        serve(EventStream(flags)) as base,
        httpx.Client(timeout=PATIENCE) as client,
        client.stream("GET", base) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"
        assert next(lines) == ": connected"
        flags.define_rule("pro", PRO)
        flags.activate("chat")
        received = [next(lines) for _ in range(4)]
    assert received == ["", "event: flags", 'data: {"changed": ["chat"]}', ""]
