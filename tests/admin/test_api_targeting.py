"""Targeting as data through the HTTP API of a real ``rollout serve`` process: a flag's flagd
definition, its targeting, named rules, the evaluation preview, flagd files in and out; and
refusals that name the JSON path of the culprit and write nothing."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx

from .serve_process import get_json, serve_with_token

TOKEN = secrets.token_urlsafe(32)
PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
COLOR = {
    "variants": {"red": "#f00", "blue": "#00f"},
    "defaultVariant": "red",
    "targeting": {"if": [{"$ref": "pro"}, "blue", None]},
    "state": "ENABLED",
}


def _evaluate(http: httpx.Client, name: str, **context: Any) -> dict[str, Any]:
    response = http.post(f"/api/v1/flags/{name}/evaluate", json={"context": context})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _refusal(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json()["error"]["field"]


def test_a_definition_is_written_read_evaluated_and_recorded(tmp_path: Path) -> None:
    with serve_with_token(tmp_path, TOKEN) as served, served.client() as http:
        rule = http.put("/api/v1/rules/pro", json={"logic": PRO, "reason": "plans that pay"})
        assert rule.status_code == 200, rule.text
        assert rule.json() == {"rule": "pro", "logic": PRO}
        assert get_json(http, "/api/v1/rules") == {"rules": [{"rule": "pro", "logic": PRO}]}

        written = http.put("/api/v1/flags/color/definition", json={**COLOR, "reason": "palette"})
        assert written.status_code == 200, written.text
        shape = {"flag": "color", **COLOR, "metadata": {}}
        assert written.json() == shape
        assert get_json(http, "/api/v1/flags/color/definition") == shape
        event = get_json(http, "/api/v1/flags/color/history?limit=1")["events"][0]
        assert (event["actor"], event["reason"]) == ("alice", "palette")

        # The preview: value, variant and reason, as flagd answers them.
        pro = _evaluate(http, "color", targetingKey="42", plan="pro")
        assert (pro["value"], pro["variant"], pro["reason"]) == ("#00f", "blue", "TARGETING_MATCH")
        free = _evaluate(http, "color", targetingKey="42", plan="free")
        assert (free["value"], free["variant"], free["reason"]) == ("#f00", "red", "DEFAULT")
        missing = _evaluate(http, "nope")
        assert (missing["reason"], missing["error_code"]) == ("ERROR", "FLAG_NOT_FOUND")

        # A rule a flag refers to stays until the flag no longer does.
        refused = http.delete("/api/v1/rules/pro")
        assert refused.status_code == 422
        assert "color" in refused.json()["error"]["message"]

        # Targeting alone: set, then removed (the default variant answers, statically).
        always_blue = {"if": [True, "blue", "red"]}
        changed = http.put("/api/v1/flags/color/targeting", json={"targeting": always_blue})
        assert changed.json()["targeting"] == always_blue
        assert _evaluate(http, "color", plan="free")["variant"] == "blue"
        removed = http.delete("/api/v1/flags/color/targeting")
        assert removed.status_code == 200, removed.text
        assert removed.json()["targeting"] is None
        assert _evaluate(http, "color")["reason"] == "STATIC"

        # Every flag with a definition and every rule, as one flagd file.
        exported = get_json(http, "/api/v1/flagd")
        assert exported["flags"]["color"]["variants"] == COLOR["variants"]
        assert exported["$evaluators"] == {"pro": PRO}

        gone = http.request("DELETE", "/api/v1/rules/pro", json={"reason": "no more plans"})
        assert gone.json() == {"deleted": "pro"}
        assert http.get("/api/v1/rules/pro").status_code == 404
        assert http.delete("/api/v1/rules/pro").status_code == 404
        # Its history stays: who, why, what it was.
        events = get_json(http, "/api/v1/rules/pro/history")["events"]
        assert [(e["action"], e["actor"], e["reason"]) for e in events] == [
            ("remove_rule", "alice", "no more plans"),
            ("define_rule", "alice", "plans that pay"),
        ]
        assert events[0]["rule"] == "pro"
        assert events[0]["before"] == {"rule:pro": PRO}
        assert get_json(http, "/api/v1/rules/pro/history?limit=1")["events"] == events[:1]
        assert http.get("/api/v1/rules/nope/history").status_code == 404


def test_a_flagd_file_is_imported_whole_and_answers_as_flagd(tmp_path: Path) -> None:
    document = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "color": {**COLOR, "metadata": {"owner": "web"}},
            "banner": {
                "state": "DISABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            },
        },
        "$evaluators": {"pro": PRO},
    }
    with serve_with_token(tmp_path, TOKEN) as served, served.client() as http:
        imported = http.post("/api/v1/flagd?reason=from%20flagd", json=document)
        assert imported.status_code == 200, imported.text
        assert sorted(imported.json()["flags"]) == ["banner", "color"]
        assert imported.json()["rules"] == ["pro"]
        assert _evaluate(http, "color", plan="enterprise")["variant"] == "blue"
        disabled = _evaluate(http, "banner")
        assert (disabled["value"], disabled["reason"]) == (None, "DISABLED")
        color = get_json(http, "/api/v1/flags/color/definition")
        assert color["metadata"] == {"owner": "web"}
        event = get_json(http, "/api/v1/flags/color/history?limit=1")["events"][0]
        assert (event["actor"], event["reason"]) == ("alice", "from flagd")


def test_refusals_name_the_json_path_and_write_nothing(tmp_path: Path) -> None:
    with serve_with_token(tmp_path, TOKEN) as served, served.client() as http:
        bad_arity = {**COLOR, "targeting": {"if": [{"==": [1]}, "blue", "red"]}}
        response = http.put("/api/v1/flags/color/definition", json=bad_arity)
        assert _refusal(response) == (422, "$.targeting.if[0]['==']")
        assert "takes 2 arguments" in response.json()["error"]["message"]
        no_such_default = {**COLOR, "defaultVariant": "green"}
        response = http.put("/api/v1/flags/color/definition", json=no_such_default)
        assert _refusal(response) == (422, "$.defaultVariant")
        response = http.put("/api/v1/flags/color/definition", json={**COLOR, "state": "ON"})
        assert _refusal(response) == (422, "$.state")
        response = http.put(
            "/api/v1/flags/color/targeting", json={"targeting": {"frobnicate": [1]}}
        )
        assert _refusal(response) == (422, "$.targeting.frobnicate")
        assert http.get("/api/v1/flags/color/definition").status_code == 404

        response = http.put("/api/v1/rules/pro", json={"logic": {"in": []}})
        assert _refusal(response) == (422, "$.logic.in")
        assert http.get("/api/v1/rules/pro").status_code == 404

        bad_file = {"flags": {"a": {"state": "ENABLED", "variants": {"x": 1, "y": "two"}}}}
        response = http.post("/api/v1/flagd", json=bad_file)
        assert _refusal(response) == (422, "$.flags.a.variants")
        malformed = http.post(
            "/api/v1/flagd", content=b'{"flags": ', headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400
        assert get_json(http, "/api/v1/flagd")["flags"] == {}
        assert get_json(http, "/api/v1/flags")["flags"] == []
