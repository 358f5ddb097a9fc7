"""``rollout serve`` (a real process on a real SQLite file): every removal route answers 404 for
a flag that does not exist, with the library's own message, and creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .serve_process import get_json, put, serve_with_token

TOKEN = "unknown-flag-token-0123456789abcdef"

#: Every removal route: (method, path under /api/v1/flags/ghost, JSON body or None).
REMOVALS: list[tuple[str, str, Any]] = [
    ("DELETE", "", None),
    ("POST", "/users/remove", {"users": ["42"]}),
    ("POST", "/excluded_users/remove", {"users": ["42"]}),
    ("DELETE", "/groups/admins", None),
    ("DELETE", "/data", None),
]


def test_every_removal_route_answers_404_and_creates_nothing(tmp_path: Path) -> None:
    with serve_with_token(tmp_path, TOKEN) as running, running.client() as http:
        put(http, "/flags/other/active", {"active": True})
        for method, suffix, body in REMOVALS:
            answer = http.request(method, f"/api/v1/flags/ghost{suffix}", json=body)
            assert answer.status_code == 404, (method, suffix, answer.text)
            assert answer.json() == {
                "error": {
                    "code": "not_found",
                    "field": "name",
                    "message": "no flag named 'ghost' (nothing was changed)",
                }
            }
        listed = get_json(http, "/api/v1/flags")
        assert [flag["flag"] for flag in listed["flags"]] == ["other"]
        history = http.get("/api/v1/flags/ghost/history")  # nothing recorded, and said so:
        assert (history.status_code, history.json()) == (  # as `rollout history ghost` (exit 2)
            404,
            {
                "error": {
                    "code": "not_found",
                    "field": "name",
                    "message": "no flag named 'ghost' and no history for it",
                }
            },
        )
        # Setting the state is declarative: off for a flag that does not exist creates it off.
        assert put(http, "/flags/ghost/active", {"active": False})["flag"] == "ghost"
        assert [flag["flag"] for flag in get_json(http, "/api/v1/flags")["flags"]] == [
            "ghost",
            "other",
        ]
