"""Stale flags on a real ``rollout serve``: when each flag was last checked (by this process) and
since when it has been on for everybody, in the list's fields and filters and in /metrics."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout import Rollout
from rollout.testing import FakeClock, eventually

from .serve_process import Served, serve_with_token

TOKEN = "stale-flags-test-token"
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("stale")
    clock = FakeClock(int(time.time() * 1000) - 30 * DAY_MS)  # history from a month ago
    with Rollout(f"sqlite:///{directory / 'rollout.db'}", clock=clock) as seed:
        seed.activate("old_on")
        seed.activate("checked")
        seed.activate_percentage("never_checked", 10)
    with serve_with_token(directory, TOKEN) as server:
        yield server


def listed(client: httpx.Client, **params: str | int) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/flags", params=params)
    assert response.status_code == 200, response.text
    return {flag["flag"]: flag for flag in response.json()["flags"]}


def test_a_check_through_the_api_is_when_the_flag_was_last_checked(served: Served) -> None:
    with served.client() as client:
        assert client.get("/api/v1/flags/checked/check", params={"user": "1"}).json() == {
            "flag": "checked",
            "user": "1",
            "active": True,
            "state": "on",
        }
        flags = listed(client)
        assert flags["checked"]["last_checked"] is not None
        assert flags["never_checked"]["last_checked"] is None
        assert client.get("/api/v1/flags/checked").json()["last_checked"] is not None
        # Not checked in a day: the one never checked, and the one checked long ago (none here).
        assert sorted(listed(client, unchecked_days=1)) == ["never_checked", "old_on"]
        assert sorted(listed(client, unchecked_days=1, state="on")) == ["old_on"]


def test_on_for_everybody_for_n_days(served: Served) -> None:
    with served.client() as client:
        assert sorted(listed(client, on_days=7)) == ["checked", "old_on"]
        assert listed(client, on_days=60) == {}
        on_since = listed(client)["old_on"]["on_since"]
        assert on_since is not None
        client.put("/api/v1/flags/old_on/percentage", json={"percentage": 100})
        # Written again, it changed nothing: no history event, and still on since then.
        assert sorted(listed(client, on_days=7)) == ["checked", "old_on"]
        client.put("/api/v1/flags/old_on/percentage", json={"percentage": 50})
        client.put("/api/v1/flags/old_on/percentage", json={"percentage": 100})
        assert sorted(listed(client, on_days=7)) == ["checked"]  # on again: from now
        assert listed(client)["old_on"]["last_changed_by"] == "alice"


def test_checks_are_counted_once_metrics_start_the_sampler(served: Served) -> None:
    with served.client() as client:
        client.get("/metrics")  # starts the sampler

        def counted() -> bool:
            return listed(client)["never_checked"]["checks"] is not None

        eventually(counted, 30, "a sampling window closed")
        assert isinstance(listed(client)["checked"]["checks"], int)


def test_last_checked_is_in_the_metrics_and_passes_promtool(served: Served) -> None:
    with served.client() as client:
        client.get("/api/v1/flags/checked/check")
        client.get("/api/v1/flags/typo/check")  # no flag: no series
        text = client.get("/metrics").text
    series = {
        s.labels["flag"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "rollout_flag_last_checked_timestamp_seconds"
    }
    assert "checked" in series
    assert "typo" not in series
    assert "never_checked" not in series
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the lint must run", pytrace=False)
        pytest.skip(reason)
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, "")
