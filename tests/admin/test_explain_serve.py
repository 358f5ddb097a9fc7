"""``GET /api/v1/flags/{name}/explain?user=ID`` on a real ``rollout serve`` process."""

from __future__ import annotations

from pathlib import Path

from rollout import Rollout
from rollout._core.bucketing import threshold

from .serve_process import get_json, serve


def test_explain_names_the_rule_and_its_numbers_and_agrees_with_check(tmp_path: Path) -> None:
    with Rollout(f"sqlite:///{tmp_path / 'rollout.db'}") as seed:  # the default store's file
        seed.activate_percentage("chat", 10)
        seed.activate_user("chat", 7)
        seed.exclude_user("chat", 8)
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        # User 1's CRC32 bucket, 2212294583, is above the 10% bound.
        out = get_json(http, "/api/v1/flags/chat/explain?user=1")
        assert out == {
            "flag": "chat",
            "user": "1",
            "active": False,
            "reason": "bucket",
            "message": f"off: bucket 2212294583 is not below {threshold(10)} (10% of users)",
            "percentage": 10.0,
            "percentage_of_time": 0.0,
            "group": None,
            "bucket": 2212294583,
            "threshold": threshold(10),
            "bucketing": "crc32",
            "draw": None,
        }
        for user, reason in (("7", "listed"), ("8", "excluded"), ("1", "bucket")):
            why = get_json(http, f"/api/v1/flags/chat/explain?user={user}")
            check = get_json(http, f"/api/v1/flags/chat/check?user={user}")
            assert (why["reason"], why["active"]) == (reason, check["active"])
        anonymous = get_json(http, "/api/v1/flags/chat/explain")
        assert (anonymous["user"], anonymous["reason"], anonymous["active"]) == (
            None,
            "no_user",
            False,
        )
        unknown = get_json(http, "/api/v1/flags/nope/explain?user=1")
        assert (unknown["reason"], unknown["active"]) == ("unknown_flag", False)
        refused = http.get("/api/v1/flags/chat/explain", params={"user": ""})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "user"
    assert served.returncode == 0, served.stderr()
