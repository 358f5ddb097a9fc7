"""Text that is not Unicode (lone surrogates, as JSON's "\\ud800" escapes make them) and values
nested too deep, sent to a real ``rollout serve``: a 422 naming the field, nothing written, and
every page and list still answering (a stored surrogate once made them answer 500 for good)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .serve_process import clean_env, serve

TOKEN = "unicode-s3cret-token"
JSON = {"Content-Type": "application/json"}
F = "/api/v1/flags/chat"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cwd: Path = tmp_path_factory.mktemp("unicode")
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve("--http", "127.0.0.1:0", cwd=cwd, env=env, token=TOKEN) as served:
        with served.client() as client:
            client.put(f"{F}/data", json={"data": {"owner": "web"}}).raise_for_status()
            yield client
        assert "Traceback" not in served.stderr()


DEEP = "[" * 33 + "]" * 33

CASES = [
    ("PUT", f"{F}/data", '{"data": {"k": "x\\ud800"}}', "data", "lone surrogate"),
    ("PUT", f"{F}/data", '{"data": {"k": {"in": ["\\udfff"]}}}', "data", "lone surrogate"),
    ("PUT", f"{F}/data", '{"data": {"k\\ud800": 1}}', "data", "lone surrogate"),
    ("PUT", f"{F}/data/replace", '{"data": {"k": "\\ud83d"}}', "data", "lone surrogate"),
    ("PUT", f"{F}/data", '{"data": {"k": ' + DEEP + "}}", "data", "32 levels"),
    ("POST", f"{F}/users", '{"users": ["ok", "u\\ud800"]}', "users", "lone surrogate"),
    ("PUT", f"{F}/users", '{"users": ["\\udc00"]}', "users", "lone surrogate"),
    ("POST", f"{F}/groups", '{"group": "g\\ud800"}', "group", "lone surrogate"),
    ("POST", "/api/v1/quarantine/chat/drop", '{"reason": "r\\ud800"}', "reason", "surrogate"),
    ("PUT", f"{F}/percentage", '{"percentage": 5, "p\\ud800": 1}', None, "lone surrogate"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]} {c[2]}" for c in CASES])
def test_text_that_is_not_unicode_is_a_422_and_nothing_breaks(
    http: httpx.Client, case: tuple[str, str, str, str | None, str]
) -> None:
    method, path, body, field, fragment = case
    before = http.get("/api/v1/flags").json()
    answer = http.request(method, path, content=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert fragment in error["message"]
    assert http.get("/api/v1/flags").json() == before
    # Everything that once answered 500 after such a write.
    pages = ["/api/v1/flags", "/", "/flags/chat", "/flags/chat?fragment=history", f"{F}/history"]
    for page in pages:
        assert http.get(page).status_code == 200, page
