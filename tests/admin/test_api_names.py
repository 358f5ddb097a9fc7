"""Every name the naming rule allows is reachable and removable through a real ``rollout serve``,
whatever it holds ("/", "%", "?", "#", dots, spaces inside); names the rule refuses are refused
with a 422 naming the field; and the API never redirects (a name ending in "/" once got a 307 to
the flag without it)."""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from rollout import Rollout
from rollout._core.validate import MAX_NAME_LENGTH, flag_name
from rollout.admin import create_app

from .api_helpers import served
from .serve_process import clean_env, serve

TOKEN = "names-s3cret-token"

#: Characters URLs treat specially, drawn often; then any Unicode character but the control
#: characters and surrogates the rule refuses.
_TRICKY = "/%?#.&=+;, \\:@~"
_CHARACTERS = st.one_of(
    st.sampled_from(_TRICKY),
    st.sampled_from(string.ascii_letters),
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
)


def allowed(name: str) -> bool:
    """Whether the library's naming rule takes ``name``."""
    try:
        flag_name(name)
    except ValueError:
        return False
    return True


NAMES = st.text(_CHARACTERS, min_size=1, max_size=24).filter(allowed)


def path_of(name: str) -> str:
    return "/api/v1/flags/" + urllib.parse.quote(name, safe="")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    cwd: Path = tmp_path_factory.mktemp("names")
    env = clean_env(ROLLOUT_TOKEN=TOKEN)
    with serve("--http", "127.0.0.1:0", cwd=cwd, env=env, token=TOKEN) as served:
        with served.client() as client:
            yield client
        assert "Traceback" not in served.stderr()


def _clear(http: httpx.Client) -> None:
    for flag in http.get("/api/v1/flags").json()["flags"]:
        assert http.delete(path_of(flag["flag"])).status_code == 200


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=NAMES, group=NAMES)
def test_every_allowed_name_is_reachable_and_removable(
    http: httpx.Client, name: str, group: str
) -> None:
    _clear(http)
    # A neighbour the name could be confused with: itself less its last character (victim/ and
    # victim), or with "x" added when that would not be a valid name.
    neighbour = name[:-1] if allowed(name[:-1]) else name + "x"
    for each in (name, neighbour):
        made = http.put(path_of(each) + "/active", json={"active": True})
        assert made.status_code == 200, made.text
        assert made.json()["flag"] == each
    shown = http.get(path_of(name))
    assert (shown.status_code, shown.json()["flag"]) == (200, name)
    assert sorted(f["flag"] for f in http.get("/api/v1/flags").json()["flags"]) == sorted(
        {name, neighbour}
    )
    # The list's query parameters take every name too: one flag by name, and a cursor past it.
    one = http.get("/api/v1/flags", params={"flag": name}).json()
    assert [f["flag"] for f in one["flags"]] == [name]
    first = http.get("/api/v1/flags", params={"limit": 1}).json()
    rest = http.get("/api/v1/flags", params={"cursor": first["next_cursor"]}).json()
    assert [f["flag"] for f in first["flags"] + rest["flags"]] == sorted({name, neighbour})
    # Groups, by the same rule: added in a body, removed by a path segment.
    other = group[:-1] if allowed(group[:-1]) else group + "x"
    for each in (group, other):
        assert http.post(path_of(name) + "/groups", json={"group": each}).status_code == 200
    removed = http.delete(path_of(name) + "/groups/" + urllib.parse.quote(group, safe=""))
    assert removed.status_code == 200, removed.text
    assert removed.json()["groups"] == [other]
    history = http.get(path_of(name) + "/history", params={"limit": 1})
    assert history.json()["events"][0]["flag"] == name

    deleted = http.delete(path_of(name))
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": name})
    remaining = [f["flag"] for f in http.get("/api/v1/flags").json()["flags"]]
    assert remaining == [neighbour]


def test_a_name_ending_in_a_slash_is_its_own_flag_and_nothing_redirects(
    http: httpx.Client,
) -> None:
    _clear(http)
    for name in ("victim", "victim/", "admins-flag"):
        assert http.put(path_of(name) + "/active", json={"active": True}).status_code == 200
    for group in ("admins", "admins/"):
        assert (
            http.post(path_of("admins-flag") + "/groups", json={"group": group}).status_code == 200
        )

    gone = http.delete("/api/v1/flags/victim%2F")
    assert (gone.status_code, gone.json()) == (200, {"deleted": "victim/"})
    assert [f["flag"] for f in http.get("/api/v1/flags").json()["flags"]] == [
        "admins-flag",
        "victim",
    ]
    ungrouped = http.delete(path_of("admins-flag") + "/groups/admins%2F")
    assert ungrouped.json()["groups"] == ["admins"]

    # A literal slash is another path, not another flag: a 404, never a redirect (whose
    # Location was built from the Host header).
    headers = {"Host": "evil.example"}
    for method, path in [
        ("DELETE", "/api/v1/flags/victim/"),
        ("GET", "/api/v1/flags/victim/"),
        ("GET", "/api/v1/flags/"),
        ("GET", "/api/v1/groups/"),
    ]:
        answer = http.request(method, path, headers=headers, follow_redirects=False)
        assert answer.status_code in (404, 403), (method, path, answer.status_code)
        assert "location" not in answer.headers
    assert http.get(path_of("victim")).status_code == 200


@pytest.mark.parametrize(
    ("path", "field", "fragment"),
    [
        ("/api/v1/flags/%20chat", "name", "whitespace"),
        ("/api/v1/flags/chat%20", "name", "whitespace"),
        ("/api/v1/flags/.", "name", None),
        ("/api/v1/flags/%2E", "name", "'.'"),
        ("/api/v1/flags/%2E%2E", "name", "'..'"),
        ("/api/v1/flags/a%0Ab", "name", "control"),
        ("/api/v1/flags/%ED%A0%80", "name", "surrogate"),  # UTF-8 of U+D800: not text
        ("/api/v1/flags/%FF", "name", "surrogate"),
        (f"/api/v1/flags/{'n' * (MAX_NAME_LENGTH + 1)}", "name", "255"),
        ("/api/v1/flags/chat/groups/%20admins", "group", "whitespace"),
    ],
)
def test_a_name_the_rule_refuses_is_a_422_naming_the_field(
    http: httpx.Client, path: str, field: str, fragment: str | None
) -> None:
    method = "DELETE" if "/groups/" in path else "PUT"
    suffix = "" if method == "DELETE" else "/active"
    before = http.get("/api/v1/flags").json()
    if method == "DELETE":
        http.post("/api/v1/flags/chat/groups", json={"group": "admins"})
        before = http.get("/api/v1/flags").json()
    answer = http.request(
        method, path + suffix, json=None if method == "DELETE" else {"active": True}
    )
    if path.endswith("/."):  # the client itself collapses "." (so no URL can name such a flag)
        assert answer.status_code in (404, 405, 422)
        return
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field
    assert fragment is None or fragment in error["message"]
    assert http.get("/api/v1/flags").json() == before


def test_names_with_a_slash_work_under_a_mount_point_too() -> None:
    with Rollout() as flags:
        flags.activate("victim")
        flags.activate("victim/")
        outer = Starlette(routes=[Mount("/ad min", app=create_app(flags, token=TOKEN))])
        with (
            served(outer) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
        ):
            assert client.get("/ad%20min/flags/victim%2F").status_code == 200
            gone = client.delete("/ad%20min/api/v1/flags/victim%2F")
            assert (gone.status_code, gone.json()) == (200, {"deleted": "victim/"})
        assert flags.features() == ["victim"]
