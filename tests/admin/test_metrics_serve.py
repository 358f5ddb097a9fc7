"""``/metrics`` of a real ``rollout serve``: the series stay bounded whatever names clients check,
and the text passes Prometheus' own linter, ``promtool check metrics``."""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout import Rollout

from .serve_process import Served, clean_env, serve

TOKEN = "metrics-test-token"
FLAGS = ("chat", "search")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("metrics")
    with Rollout(f"sqlite:///{directory / 'rollout.db'}") as seed:
        seed.activate("chat")
        seed.activate_percentage("search", 50)
    secret = "".join(random.choices(string.ascii_letters, k=43))  # the peer listener's
    env = clean_env(ROLLOUT_TOKEN=f"prometheus={TOKEN}")
    args = ["--http", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--secret", secret]
    with serve(*args, cwd=directory, env=env, token=TOKEN) as server:
        yield server
    assert server.returncode == 0, server.stderr()


def samples(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.name, s.labels) for f in text_string_to_metric_families(text) for s in f.samples]


def value(text: str, name: str) -> float:
    return next(
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    )


def test_checks_of_unknown_names_do_not_grow_the_series(served: Served) -> None:
    with served.client() as client:
        before = client.get("/metrics").text  # the first scrape starts the sampler
        rng = random.Random(12)
        names = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(10_000)]

        def check(chunk: list[str]) -> None:
            with served.client() as own:  # one client (and connection) per thread
                for i, name in enumerate(chunk):
                    own.get(f"/api/v1/flags/{name}/check").raise_for_status()
                    if i % 10 == 0:  # and some checks of a flag that exists
                        own.get("/api/v1/flags/chat/check").raise_for_status()

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(check, [names[i::8] for i in range(8)]))
        elapsed = time.monotonic() - started
        after = client.get("/metrics").text
    labelled = {labels["flag"] for name, labels in samples(after) if name == "rollout_checks_total"}
    assert labelled <= set(FLAGS)
    # Two series (on, off) per existing flag at most: the count cannot depend on what was asked.
    print(f"10,000 checks in {elapsed:.1f} s; /metrics: {len(samples(before))} samples before, "
          f"{len(samples(after))} after")  # fmt: skip
    assert len(samples(after)) <= len(samples(before)) + 2 * len(FLAGS)
    assert value(after, "rollout_unknown_flag_checks_total") > 0  # counted, in one series


def test_the_metrics_pass_promtool(served: Served) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the lint must run", pytrace=False)
        pytest.skip(reason)
    with served.client() as client:
        client.get("/metrics")  # starts the sampler
        for name in (*FLAGS, "typo"):
            client.get(f"/api/v1/flags/{name}/check")
        text = client.get("/metrics").text
    assert "rollout_sync_peers_connected" in text  # the transport's metrics are there too
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, "")


def test_a_tokenless_scrape_is_refused(served: Served) -> None:
    assert httpx.get(f"{served.url.rstrip('/')}/metrics", timeout=30).status_code == 401
