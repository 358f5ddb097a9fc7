"""A flag's users a page at a time, and the reason of every change, on a real ``rollout serve``
process: ``GET /api/v1/flags/{name}/users`` (and ``excluded_users``), ``reason`` in a write's
body, ``--require-reason`` / ``$ROLLOUT_REQUIRE_REASON``, and who a change without a token is
recorded as."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from rollout import Rollout

from .serve_process import clean_env, get_json, rollout, serve

DB = "rollout.db"  # the default store's file, in serve's working directory


def seeded(tmp_path: Path) -> None:
    with Rollout(f"sqlite:///{tmp_path / DB}") as seed:
        # 250 numeric ids, some text ones, one listed user also excluded.
        seed.activate_users("chat", [*map(str, range(1, 251)), "bob", "alice", "Bobby"])
        seed.exclude_users("chat", ["7", "eve"])


def pages(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, following next_cursor."""
    answers = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = http.get(path, params=query)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
        cursor = answers[-1]["next_cursor"]
        if cursor is None:
            return answers


def test_users_come_in_pages_in_show_order_with_search(tmp_path: Path) -> None:
    seeded(tmp_path)
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        first = get_json(http, "/api/v1/flags/chat/users")
        assert (first["flag"], first["total"], len(first["users"])) == ("chat", 253, 100)
        assert first["users"][:3] == ["1", "2", "3"]  # numerically: 2 before 10
        assert first["users"][9] == "10"
        assert first["excluded"] == ["7"]  # listed and excluded: the exclusion wins
        assert isinstance(first["next_cursor"], str)

        every = pages(http, "/api/v1/flags/chat/users", limit=120)
        assert [len(p["users"]) for p in every] == [120, 120, 13]
        ids = [i for p in every for i in p["users"]]
        assert ids == [*map(str, range(1, 251)), "Bobby", "alice", "bob"]  # as `rollout show`

        found = get_json(http, "/api/v1/flags/chat/users?q=bob")
        assert (found["total"], found["users"]) == (2, ["Bobby", "bob"])  # ignoring case
        found = pages(http, "/api/v1/flags/chat/users", q="12", limit=5)
        assert [i for p in found for i in p["users"]] == [
            "12",
            "112",
            *map(str, range(120, 130)),
            "212",
        ]

        excluded = get_json(http, "/api/v1/flags/chat/excluded_users")
        assert excluded == {
            "flag": "chat", "total": 2, "users": ["7", "eve"], "excluded": ["7", "eve"],
            "next_cursor": None,
        }  # fmt: skip
        nothing = get_json(http, "/api/v1/flags/nope/users")
        assert (nothing["total"], nothing["users"], nothing["next_cursor"]) == (0, [], None)

        # Bad input: named, and a 422.
        for query, field in (
            ({"cursor": "not-ours"}, "cursor"),
            ({"cursor": "u1zz"}, "cursor"),
            ({"limit": "0"}, "limit"),
            ({"limit": "1001"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"q": "a\nb"}, "q"),
        ):
            refused = http.get("/api/v1/flags/chat/users", params=query)
            assert refused.status_code == 422, (query, refused.text)
            assert refused.json()["error"]["field"] == field
            assert repr(next(iter(query.values()))) in refused.json()["error"]["message"]
        document = get_json(http, "/api/v1/openapi.json")
        assert {"get", "post", "put"} <= set(document["paths"]["/flags/{name}/users"])
    assert served.returncode == 0, served.stderr()


def test_a_flag_in_full_lists_ids_in_show_order_on_every_surface(tmp_path: Path) -> None:
    # `rollout show`'s table and the API's pages put 7 before 42; the full flag's JSON, shared by
    # `rollout show --json` and GET /api/v1/flags/{name}, must not say "42" before "7".
    with Rollout(f"sqlite:///{tmp_path / DB}") as seed:
        seed.activate_users("chat", ["1000", "42", "bob", "7", "100"])
        seed.exclude_users("chat", ["90", "8", "eve"])
    users, excluded = ["7", "42", "100", "1000", "bob"], ["8", "90", "eve"]
    shown = rollout("--json", "show", "chat", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (json.loads(shown.stdout)["users"], json.loads(shown.stdout)["excluded_users"]) == (
        users,
        excluded,
    )
    table = rollout("show", "chat", cwd=tmp_path).stdout.split()
    assert [table.index(user) for user in users] == sorted(table.index(user) for user in users)
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        whole = get_json(http, "/api/v1/flags/chat")
        assert (whole["users"], whole["excluded_users"]) == (users, excluded)
        assert get_json(http, "/api/v1/flags/chat/users")["users"] == users
    assert served.returncode == 0, served.stderr()


def test_a_reason_is_recorded_and_a_change_without_a_token_names_its_client(
    tmp_path: Path,
) -> None:
    with serve("--http", "127.0.0.1:0", cwd=tmp_path) as served, served.client() as http:
        # Auth off: a change needs the CSRF token the dashboard's pages carry.
        page = http.get("/").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert csrf is not None
        changed = http.put(
            "/api/v1/flags/chat/percentage",
            json={"percentage": 20, "reason": "ramp up after review"},
            headers={"X-CSRF-Token": csrf[1]},
        )
        assert changed.status_code == 200, changed.text
    assert served.returncode == 0, served.stderr()
    with Rollout(f"sqlite:///{tmp_path / DB}") as flags:
        event = flags.history("chat")[0]
        assert (event.reason, event.actor) == ("ramp up after review", "anonymous@127.0.0.1")


def test_require_reason_refuses_changes_without_one(tmp_path: Path) -> None:
    token = "alice-s3cret"
    with Rollout(f"sqlite:///{tmp_path / DB}") as seed:
        seed.activate_percentage("chat", 20)
    for args, env, percentage in (
        (["--require-reason"], {}, 30),
        ([], {"ROLLOUT_REQUIRE_REASON": "1"}, 40),  # another value: a write changing nothing
    ):  # has no history event
        environment = clean_env(ROLLOUT_TOKEN=f"alice={token}", **env)
        with (
            serve("--http", "127.0.0.1:0", *args, cwd=tmp_path, env=environment, token=token) as s,
            s.client() as http,
        ):
            for method, path, body in (
                ("PUT", "/flags/chat/percentage", {"percentage": 50}),
                ("POST", "/flags/chat/users", {"users": ["42"]}),
                ("DELETE", "/flags/chat", None),
                ("DELETE", "/flags/chat/data", None),
                ("PUT", "/flags/new/active", {"active": True}),
            ):
                refused = http.request(method, f"/api/v1{path}", json=body)
                assert refused.status_code == 422, (path, refused.text)
                assert refused.json()["error"]["field"] == "reason"
            reading = http.get("/api/v1/flags/chat")
            assert reading.status_code == 200  # reading needs no reason
            done = http.put(
                "/api/v1/flags/chat/percentage",
                json={"percentage": percentage, "reason": "why not"},
            )
            assert done.status_code == 200, done.text
        assert s.returncode == 0, s.stderr()
    with Rollout(f"sqlite:///{tmp_path / DB}") as flags:
        assert not flags.exists("new")
        assert flags.get("chat").percentage == 40
        assert flags.get("chat").users == frozenset()
        assert [(e.actor, e.reason) for e in flags.history("chat")][:2] == [
            ("alice", "why not"),
            ("alice", "why not"),
        ]


def test_a_bad_require_reason_variable_is_refused(tmp_path: Path) -> None:
    done = rollout(
        "serve", "--http", "127.0.0.1:0", cwd=tmp_path,
        env=clean_env(ROLLOUT_REQUIRE_REASON="maybe"),
    )  # fmt: skip
    assert done.returncode != 0
    assert "ROLLOUT_REQUIRE_REASON" in done.stderr
    assert "maybe" in done.stderr
    assert not (tmp_path / DB).exists()


def test_require_reason_refuses_a_reason_of_only_spaces(tmp_path: Path) -> None:
    token = "alice-s3cret"
    with Rollout(f"sqlite:///{tmp_path / DB}") as seed:
        seed.activate_percentage("chat", 20)
    environment = clean_env(ROLLOUT_TOKEN=f"alice={token}")
    with (
        serve("--http", "127.0.0.1:0", "--require-reason", cwd=tmp_path, env=environment,
              token=token) as served,
        served.client() as http,
    ):  # fmt: skip
        for reason in (" ", "   ", "\u3000"):
            refused = http.put(
                "/api/v1/flags/chat/percentage", json={"percentage": 50, "reason": reason}
            )
            assert refused.status_code == 422, (reason, refused.text)
            assert refused.json()["error"]["field"] == "reason"
            assert "reason" in refused.json()["error"]["message"]
    assert served.returncode == 0, served.stderr()
    with Rollout(f"sqlite:///{tmp_path / DB}") as flags:
        assert flags.get("chat").percentage == 20
