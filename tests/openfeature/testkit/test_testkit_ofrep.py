"""The judge over HTTP: flagd's evaluator testkit through the real OFREP client
(``openfeature-provider-ofrep``) against ``rollout serve`` as a process, after
``Rollout.load_flagd`` of our restatement of the testkit's flags into its store.

Also what that client does not show: the OFREP answers themselves, single and bulk.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider

from rollout import Rollout
from rollout.testing.cluster import free_port

from ...admin.serve_process import Served, serve
from .judge import assert_row, evaluate
from .scenarios import FLAGS_FILE, ROWS, Row

TOKEN = secrets.token_urlsafe(32)
BALLMER = {"email": "ballmer@macrosoft.com"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("testkit")
    with Rollout(f"sqlite:///{folder / 'rollout.db'}") as seed:
        seed.load_flagd(FLAGS_FILE)
    args = ("--http", f"127.0.0.1:{free_port()}", "--token", f"ops={TOKEN}")
    with serve(*args, cwd=folder, token=TOKEN) as server:
        yield server
    assert "Traceback" not in server.stderr()


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[OpenFeatureClient]:
    provider = OFREPProvider(
        served.url.rstrip("/"), headers_factory=lambda: {"Authorization": f"Bearer {TOKEN}"}
    )
    api.set_provider(provider, "flagd-testkit-ofrep")
    try:
        yield api.get_client("flagd-testkit-ofrep")
    finally:
        api.shutdown()


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with served.client() as client:
        yield client


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_scenario_row(client: OpenFeatureClient, row: Row) -> None:
    assert_row(evaluate(client, row), row)


def one(http: httpx.Client, key: str, context: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = http.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": context})
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_a_targeted_answer_names_its_variant_and_reason(http: httpx.Client) -> None:
    assert one(http, "some-email-targeted-flag", BALLMER) == (
        200,
        {"key": "some-email-targeted-flag", "value": "hi", "variant": "hi",
         "reason": "TARGETING_MATCH", "metadata": {}},
    )  # fmt: skip
    assert one(http, "integer-flag", {})[1]["variant"] == "ten"
    assert one(http, "metadata-flag", {})[1] == {
        "key": "metadata-flag", "value": True, "variant": "on", "reason": "STATIC",
        "metadata": {"string": "1.0.2", "integer": 2, "boolean": True, "float": 0.1},
    }  # fmt: skip


def test_no_value_is_the_code_default_with_no_variant_name(http: httpx.Client) -> None:
    # flagd leaves value and variant out; the variant is "" here, which the Python OFREP
    # client needs (it reads the field unconditionally) and which names no variant.
    for key, reason in [("disabled-string-flag", "DISABLED"), ("null-default-flag", "DEFAULT")]:
        status, body = one(http, key, {})
        assert (status, body) == (
            200,
            {"key": key, "variant": "", "reason": reason, "metadata": {}},
        ), body


def test_an_error_of_a_defined_flag_is_a_400_naming_its_code(http: httpx.Client) -> None:
    status, body = one(http, "ref-to-nonexistent-evaluator-flag", {})
    assert (status, body["key"], body["errorCode"]) == (
        400,
        "ref-to-nonexistent-evaluator-flag",
        "PARSE_ERROR",
    )
    assert "nonexistent_evaluator" in body["errorDetails"]
    assert one(http, "missing-flag", {})[0] == 404


def test_bulk_answers_every_flag_and_reports_errors_among_them(http: httpx.Client) -> None:
    response = http.post("/ofrep/v1/evaluate/flags", json={"context": BALLMER})
    assert response.status_code == 200, response.text
    answers = {answer["key"]: answer for answer in response.json()["flags"]}
    assert sorted(answers) == sorted(json.loads(FLAGS_FILE.read_text())["flags"])
    assert answers["string-targeted-zero-flag"] == {
        "key": "string-targeted-zero-flag", "value": "", "variant": "zero",
        "reason": "TARGETING_MATCH", "metadata": {},
    }  # fmt: skip
    assert answers["disabled-object-flag"]["reason"] == "DISABLED"
    assert "value" not in answers["disabled-object-flag"]
    broken = answers["ref-to-nonexistent-evaluator-flag"]
    assert (broken["errorCode"], "value" in broken) == ("PARSE_ERROR", False)
