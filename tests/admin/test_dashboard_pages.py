"""The dashboard's pages over HTTP (no browser): sign-in, what the pages show, escaping, links
when mounted under a prefix, and the static files. The real app, served by uvicorn on a socket.
"""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from rollout import Rollout
from rollout.admin import create_app

from .dashboard_server import serve

TOKENS = {"alice": "alice-s3cret", "ci": "ci-s3cret"}


@pytest.fixture
def flags() -> Iterator[Rollout]:
    with Rollout(node_name="web-1") as rollout:
        rollout.define_group("admins", lambda user: False)
        with rollout.with_context(user="bob"):
            rollout.activate_percentage("chat", 20)
            rollout.activate_users("chat", ["42", "7"])
            rollout.activate_group("chat", "admins")
            rollout.set_feature_data("chat", {"description": "The new chat", "owner": "web"})
        rollout.activate("signup")
        rollout.set_feature_data("old_search", {})
        yield rollout


@pytest.fixture
def url(flags: Rollout) -> Iterator[str]:
    with serve(create_app(flags, tokens=TOKENS)) as base:
        yield base


@contextlib.contextmanager
def signed_in(url: str, token: str = "alice-s3cret") -> Iterator[httpx.Client]:
    """A client holding a dashboard session, got through the login form."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        response = client.post("/login", data={"token": token, "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match, page
    return match.group(1)


def rows(page: str) -> dict[str, str]:
    """The list page's rows: flag name -> the row's text."""
    table = page[page.index("<tbody>") : page.index("</tbody>")]
    found = re.findall(r'<tr data-flag="([^"]*)"(.*?)</tr>', table, re.S)
    return {html.unescape(name): re.sub(r"(<[^>]+>|\s)+", " ", row) for name, row in found}


# Signing in ----------------------------------------------------------------------------------


def test_a_page_without_a_session_sends_to_the_login_form(url: str) -> None:
    response = httpx.get(url + "/flags/chat?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fflags%2Fchat%3Fx%3D1"
    form = httpx.get(url + response.headers["location"])
    assert form.status_code == 200
    assert '<label for="token">Token</label>' in form.text
    assert 'name="next" value="/flags/chat?x=1"' in form.text


def test_the_right_token_signs_in_with_a_strict_http_only_cookie(url: str) -> None:
    response = httpx.post(url + "/login", data={"token": "alice-s3cret", "next": "/flags/chat?x=1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/flags/chat?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rollout_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/;" in cookie.lower() + ";"
    with signed_in(url) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "alice" in page.text  # who is signed in


def test_a_wrong_token_is_refused_and_sets_no_cookie(url: str) -> None:
    response = httpx.post(url + "/login", data={"token": "nope", "next": "/"})
    assert response.status_code == 401
    assert "That token is not valid." in response.text
    assert "set-cookie" not in response.headers
    assert httpx.get(url + "/", cookies=response.cookies).status_code == 303


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil", ""]
)
def test_sign_in_never_sends_to_another_site(url: str, target: str) -> None:
    response = httpx.post(url + "/login", data={"token": "ci-s3cret", "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_sign_in_posted_from_another_site_is_refused(url: str) -> None:
    response = httpx.post(
        url + "/login",
        data={"token": "alice-s3cret", "next": "/"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_a_sign_in_that_is_not_a_form_is_a_400(url: str) -> None:
    response = httpx.post(url + "/login", json={"token": "alice-s3cret"})
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


def test_logout_needs_the_page_csrf_token_and_ends_the_session(url: str) -> None:
    with signed_in(url) as client:
        csrf = csrf_of(client.get("/").text)
        assert client.post("/logout").status_code == 403  # a plain cross-site form can't
        response = client.post("/logout", headers={"X-CSRF-Token": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert 'rollout_session=""' in response.headers["set-cookie"] or (
            "max-age=0" in response.headers["set-cookie"].lower()
        )
        assert client.get("/").status_code == 303  # signed out


def test_the_page_csrf_token_is_what_the_api_wants_from_a_session(url: str, flags: Rollout) -> None:
    with signed_in(url) as client:
        csrf = csrf_of(client.get("/").text)
        refused = client.put("/api/v1/flags/chat/percentage", json={"percentage": 50})
        assert refused.status_code == 403
        assert flags.get("chat").percentage == 20
        done = client.put(
            "/api/v1/flags/chat/percentage", json={"percentage": 50}, headers={"X-CSRF-Token": csrf}
        )
        assert done.status_code == 200, done.text
        assert flags.get("chat").percentage == 50
        assert flags.history("chat")[0].actor == "alice"  # the signed-in token's name


# What the pages show -------------------------------------------------------------------------


def test_the_list_shows_every_flag_with_its_state_and_its_three_states(url: str) -> None:
    with signed_in(url) as client:
        page = client.get("/").text
    assert list(rows(page)) == ["chat", "old_search", "signup"]
    chat, old, signup = rows(page).values()
    assert "partial 20%" in chat
    assert "20% of users · 2 users · 1 group" in chat
    assert "The new chat" in chat  # data["description"]
    assert " off " in old
    assert "nobody" in old
    assert " on " in signup
    assert "everybody" in signup
    # Three states in each row (and the template for new ones): off, partial, on.
    assert page.count('role="group" aria-label="Who gets ') == 4
    raw = dict(re.findall(r'<tr data-flag="([^"]*)"(.*?)</tr>', page, re.S))
    assert 'data-set="off" aria-pressed="true"' in raw["old_search"]
    assert 'data-current="true">Partial<' in raw["chat"]
    assert 'data-set="on" aria-pressed="true"' in raw["signup"]
    assert 'aria-label="Search flags"' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_the_list_search_is_kept_in_the_address(url: str) -> None:
    with signed_in(url) as client:
        page = client.get("/", params={"q": "ch<at"}).text
    assert 'value="ch&lt;at"' in page


def test_the_flag_page_shows_targeting_groups_data_and_history(url: str) -> None:
    with signed_in(url) as client:
        page = client.get("/flags/chat").text
    assert '<h1 id="flag-name">chat</h1>' in page
    assert re.search(r'id="percentage" min="0" max="100" step="1" value="20.0"', page)
    assert 'aria-label="Remove user 42"' in page
    assert 'aria-label="Remove user 7"' in page
    # The groups defined in this process, `all` included; the flag's own are ticked.
    assert re.search(r'data-group="admins" checked', page)
    assert re.search(r'data-group="all">', page)
    assert "&#34;owner&#34;: &#34;web&#34;" in page  # the data editor, escaped
    history = page[page.index('id="history"') :]
    assert "bob" in history
    assert "added user 42" in history
    assert "percentage of users: 0% → 20%" in history
    assert "on web-1" in history


def test_the_history_fragment_is_the_history_alone(url: str, flags: Rollout) -> None:
    with flags.with_context(user="carol", reason="incident 12"):
        flags.deactivate("chat")
    with signed_in(url) as client:
        fragment = client.get("/flags/chat", params={"fragment": "history"}).text
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<ol class="history">')
    first = fragment[: fragment.index("</li>\n")]
    assert "carol" in first
    assert "deactivate" in first
    assert "incident 12" in first
    assert "users cleared (were" in first


def test_history_is_headed_by_what_each_change_did(url: str, flags: Rollout) -> None:
    with flags.with_context(user="carol"):
        flags.activate_users("chat", [str(n) for n in range(1000, 3000)])
        flags.activate_percentage_of_time("chat", 5)
        flags.exclude_user("chat", "13")
    with signed_in(url) as client:
        fragment = client.get("/flags/chat", params={"fragment": "history"}).text
    titles = re.findall(r'<span class="action-title">([^<]*)</span>', fragment)
    assert titles == [
        "excluded user 13",
        "on for 5% of the time",
        "added 2,000 users",
        "changed data",
        "on for group admins",
        "added 2 users",
        "on for 20% of users",
    ]
    assert "users: +2,000 -0 (0 unchanged)" in fragment


def test_a_flag_of_100000_users_is_a_small_page_and_a_small_fragment(
    url: str, flags: Rollout
) -> None:
    flags.activate_users("big", [str(n) for n in range(100_000, 0, -1)])
    flags.exclude_users("big", ["3", "zed"])
    with signed_in(url) as client:
        page = client.get("/flags/big")
        fragment = client.get("/flags/big", params={"fragment": "flag"})
    assert page.status_code == 200
    assert len(page.content) < 30_000  # the first 100 ids, not 100,000
    assert "100,000 users" in page.text
    assert 'aria-label="Remove user 100"' in page.text
    assert 'aria-label="Remove user 101"' not in page.text
    light = fragment.json()
    assert len(fragment.content) < 5_000
    assert light["users"] == [str(n) for n in range(1, 101)]
    assert (light["counts"]["users"], light["counts"]["excluded_users"]) == (100_000, 2)
    assert light["users_excluded"] == ["3"]
    assert light["excluded_users"] == ["3", "zed"]
    assert light["users_next_cursor"] is not None
    assert light["excluded_users_next_cursor"] is None
    assert (light["state"], light["exists"]) == ("partial", True)


def test_a_flag_that_does_not_exist_gets_a_page_that_can_create_it(url: str) -> None:
    with signed_in(url) as client:
        page = client.get("/flags/brand_new")
        assert page.status_code == 200
        assert re.search(r'<p class="banner" id="missing">', page.text)
        assert "No changes recorded." in page.text
        assert client.get("/flags/chat").text.count('id="missing" hidden') == 1
        # The list's "new flag" box without JavaScript.
        opened = client.get("/flags/", params={"name": "new one"})
        assert opened.status_code == 303
        assert opened.headers["location"] == "/flags/new%20one"


def test_a_name_no_flag_can_have_is_a_404(url: str) -> None:
    with signed_in(url) as client:
        response = client.get("/flags/bad%01name")
        assert response.status_code == 404
        assert "control characters" in response.text


def test_names_ids_and_data_are_escaped(url: str, flags: Rollout) -> None:
    evil = '<img src=x onerror="alert(1)">'
    flags.activate_user(evil, evil)
    flags.set_feature_data(evil, {"description": evil, evil: "</textarea><script>x</script>"})
    with signed_in(url) as client:
        pages = [client.get("/").text, client.get("/flags/" + evil).text]
    for page in pages:
        assert "<img" not in page
        assert "<script>x" not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_pages_forbid_framing_and_inline_script(url: str) -> None:
    with signed_in(url) as client:
        for path in ("/", "/flags/chat"):
            response = client.get(path)
            policy = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy
            assert "script-src 'self'" in policy
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            # No inline script: every <script> has a src, or only carries JSON.
            for tag in re.findall(r"<script[^>]*>", response.text):
                assert "src=" in tag or 'type="application/json"' in tag


def test_static_files_are_served_with_a_version_in_their_url(url: str) -> None:
    with signed_in(url) as client:
        page = client.get("/flags/chat").text
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {link.split("?")[0] for link in links} == {
        "/static/dashboard.css",
        "/static/common.js",
        "/static/flag.js",
        "/static/definition.js",
    }
    for link in links:
        assert re.search(r"\?v=[0-9a-f]{12}$", link)
        response = httpx.get(url + link)  # public: the login page needs them
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "application/javascript",
        )


def test_scripts_and_styles_travel_compressed_and_pages_do_not(url: str) -> None:
    # A page carries the session's CSRF token and reflects the search in its address: compressed,
    # its size would let a site that can make the browser load it guess the token (BREACH).
    # Scripts and the style sheet are public files with no secret: compressed to under half.
    gzip = {"Accept-Encoding": "gzip"}
    with signed_in(url) as client:
        page = client.get("/", params={"q": "chat"}, headers=gzip)
        links = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        statics = [client.get(link, headers=gzip) for link in links]
    assert "content-encoding" not in page.headers
    assert links
    for link, response in zip(links, statics, strict=True):
        assert response.headers.get("content-encoding") == "gzip", link
        assert len(response.content) > 2 * int(response.headers["content-length"]), link


def test_templates_and_static_files_are_package_data() -> None:
    package = files("rollout.admin")
    for name in ("base.html", "list.html", "flag.html", "login.html", "_history.html"):
        assert package.joinpath("templates", name).is_file()
    for name in ("dashboard.css", "common.js", "list.js", "flag.js"):
        assert package.joinpath("static", name).is_file()


def test_jinja_is_imported_only_when_the_pages_are_built() -> None:
    code = (
        "import sys, rollout.admin._pages as p; print('jinja2' in sys.modules); "
        "from rollout import Rollout; from rollout.admin._auth import Auth; "
        "p.page_routes(Rollout(), Auth()); print('jinja2' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True"]


# Auth off, and mounted inside another app ----------------------------------------------------


def test_with_auth_off_the_pages_open_without_signing_in(flags: Rollout) -> None:
    with serve(create_app(flags)) as url:
        page = httpx.get(url + "/")
        assert page.status_code == 200
        assert "Sign out" not in page.text
        assert csrf_of(page.text)
        login = httpx.get(url + "/login?next=/flags/chat")
        assert login.status_code == 303
        assert login.headers["location"] == "/flags/chat"


def test_mounted_under_a_prefix_every_link_starts_with_it(flags: Rollout) -> None:
    outer = Starlette(routes=[Mount("/admin", app=create_app(flags, tokens=TOKENS))])
    with serve(outer) as url:
        to_login = httpx.get(url + "/admin/")
        assert to_login.status_code == 303
        assert to_login.headers["location"].startswith("/admin/login?next=")
        form = httpx.get(url + to_login.headers["location"]).text
        assert 'action="/admin/login"' in form
        signed = httpx.post(url + "/admin/login", data={"token": "ci-s3cret", "next": ""})
        assert signed.headers["location"] == "/admin/"
        with httpx.Client(base_url=url, cookies=signed.cookies, timeout=30.0) as client:
            for path in ("/admin/", "/admin/flags/chat"):
                page = client.get(path).text
                assert '<meta name="base-path" content="/admin">' in page
                links: list[Any] = re.findall(r'(?:src|href|action)="(/[^"]*)"', page)
                assert links
                assert all(link.startswith("/admin/") for link in links), links
                for static in (link for link in links if "/static/" in link):
                    assert client.get(static).status_code == 200
