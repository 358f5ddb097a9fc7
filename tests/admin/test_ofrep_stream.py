"""OFREP's change stream (ADR-0008) on a real ``rollout serve``: the bulk answer names it, its
ticket opens it (and nothing else does), and a change sends ``refetchEvaluation``."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollout import Rollout
from rollout.admin import _events as events_module
from rollout.admin import create_app
from rollout.testing.cluster import free_port

from .dashboard_server import serve as dashboard_serve
from .serve_process import Served, serve

ADMIN = secrets.token_urlsafe(32)
WEB = secrets.token_urlsafe(32)
BULK = "/ofrep/v1/evaluate/flags"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Rollout(f"sqlite:///{tmp_path / 'rollout.db'}") as seed:
        seed.set("chat", False)
    args = ("--http", f"127.0.0.1:{free_port()}", "--token", f"ops={ADMIN}")
    with serve(*args, "--eval-token", f"web={WEB}", cwd=tmp_path, token=ADMIN) as server:
        yield server


def stream_uri(server: Served, token: str) -> str:
    with server.client(token) as http:
        answer = http.post(BULK, json={"context": {"targetingKey": "a"}})
    [stream] = answer.json()["eventStreams"]
    assert stream["type"] == "sse"
    assert stream["inactivityDelaySec"] == 120
    uri: str = stream["endpoint"]["requestUri"]
    assert uri.startswith("/ofrep/v1/events?ticket=")
    assert WEB not in uri  # the URL names the token, never its secret
    return uri


def test_a_change_sends_refetch_evaluation_on_the_stream_its_ticket_opens(
    served: Served,
) -> None:
    uri = stream_uri(served, WEB)
    with (
        httpx.Client(base_url=served.url.rstrip("/"), timeout=30.0) as anonymous,
        anonymous.stream("GET", uri) as events,
    ):
        assert events.status_code == 200
        lines = events.iter_lines()
        assert next(lines).startswith("retry:")  # connected
        with served.client(ADMIN) as http:
            assert http.put("/api/v1/flags/chat/active", json={"active": True}).status_code == 200
        data = next(line for line in lines if line.startswith("data:"))
        assert json.loads(data.removeprefix("data:")) == {"type": "refetchEvaluation"}


@pytest.mark.parametrize(
    "query", ["", "?ticket=", "?ticket=d2Vi.0000", "?ticket=bm9ib2R5.0123456789abcdef"]
)
def test_without_a_valid_ticket_the_stream_is_refused(served: Served, query: str) -> None:
    with httpx.Client(base_url=served.url.rstrip("/"), timeout=30.0) as anonymous:
        refused = anonymous.get(f"/ofrep/v1/events{query}")
    assert refused.status_code == 401
    assert "ticket" in refused.json()["errorDetails"]


def test_a_ticket_opens_the_stream_and_nothing_else(served: Served) -> None:
    ticket = stream_uri(served, WEB).partition("?")[2]
    with httpx.Client(base_url=served.url.rstrip("/"), timeout=30.0) as anonymous:
        assert anonymous.get(f"/api/v1/flags?{ticket}").status_code == 401
        assert anonymous.post(f"{BULK}?{ticket}", json={}).status_code == 401


def test_ofrep_streams_and_dashboard_streams_share_one_bound() -> None:
    """``serve`` keeps room for requests by bounding open streams; OFREP's count too."""
    with (
        Rollout() as flags,
        dashboard_serve(create_app(flags, token=ADMIN, max_event_streams=1)) as url,
        httpx.Client(base_url=url, timeout=30.0) as http,
    ):
        bulk = http.post(BULK, json={}, headers={"Authorization": f"Bearer {ADMIN}"})
        uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        with http.stream("GET", uri) as ofrep_stream:
            assert ofrep_stream.status_code == 200
            dashboard = http.get("/events", headers={"Authorization": f"Bearer {ADMIN}"})
            assert dashboard.status_code == 503


def test_a_browser_key_cannot_lock_the_dashboards_out_of_their_streams() -> None:
    """A browser key ships to every visitor, so anyone can get a ticket: streams opened with
    it must leave room for the operators' dashboards."""
    tokens = {"ops": ADMIN, "web": WEB}
    with (
        Rollout() as flags,
        dashboard_serve(
            create_app(flags, tokens=tokens, scopes={"web": "evaluate"}, max_event_streams=10)
        ) as url,
        httpx.Client(base_url=url, timeout=30.0) as http,
        contextlib.ExitStack() as held,
    ):
        bulk = http.post(BULK, json={}, headers={"Authorization": f"Bearer {WEB}"})
        uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        statuses = []
        for _ in range(10):  # a stranger opens as many as it can
            stream = held.enter_context(http.stream("GET", uri))
            statuses.append(stream.status_code)
        assert statuses == [200] * 9 + [503]
        with http.stream("GET", "/events", headers={"Authorization": f"Bearer {ADMIN}"}) as mine:
            assert mine.status_code == 200


def test_a_key_limited_to_some_flags_learns_nothing_of_changes_to_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither its poll's ETag nor its stream moves when a flag it may not see changes."""
    monkeypatch.setattr(events_module, "KEEPALIVE", 0.2)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    narrow = {"Authorization": f"Bearer {WEB}"}
    with Rollout() as flags:
        flags.set("chat", False)
        flags.set("secret", False)
        app = create_app(
            flags,
            tokens={"ops": ADMIN, "web": WEB},
            scopes={"web": "evaluate"},
            token_flags={"web": ["chat"]},
        )
        with (
            dashboard_serve(app) as url,
            httpx.Client(base_url=url, timeout=30.0) as http,
        ):
            first = http.post(BULK, json={}, headers=narrow)
            etag = first.headers["ETag"]
            uri = first.json()["eventStreams"][0]["endpoint"]["requestUri"]
            with http.stream("GET", uri) as events:
                lines = (line for line in events.iter_lines() if line)
                assert next(lines).startswith("retry:")
                put = http.put("/api/v1/flags/secret/active", json={"active": True}, headers=admin)
                assert put.status_code == 200
                # Three keepalives (one may have left before the change arrived): nothing else.
                seen = [next(lines), next(lines), next(lines)]
                assert [line for line in seen if line.startswith("data:")] == []
                poll = http.post(BULK, json={}, headers={**narrow, "If-None-Match": etag})
                assert poll.status_code == 304
                put = http.put("/api/v1/flags/chat/active", json={"active": True}, headers=admin)
                assert put.status_code == 200
                data = next(line for line in lines if line.startswith("data:"))
                assert json.loads(data.removeprefix("data:")) == {"type": "refetchEvaluation"}
                poll = http.post(BULK, json={}, headers={**narrow, "If-None-Match": etag})
                assert poll.status_code == 200
                assert poll.json()["flags"][0]["value"] is True


def test_streams_refused_past_the_cap_do_not_flood_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        Rollout() as flags,
        dashboard_serve(
            create_app(flags, tokens={"ops": ADMIN, "web": WEB}, scopes={"web": "evaluate"},
                       max_event_streams=2)
        ) as url,
        httpx.Client(base_url=url, timeout=30.0) as http,
    ):  # fmt: skip
        bulk = http.post(BULK, json={}, headers={"Authorization": f"Bearer {WEB}"})
        uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
        with http.stream("GET", uri) as held:
            assert held.status_code == 200
            caplog.clear()
            refused = [http.get(uri).status_code for _ in range(50)]
    assert refused == [503] * 50
    lines = [r for r in caplog.records if "refused an event stream" in r.getMessage()]
    assert len(lines) == 1


def test_a_named_rules_change_reaches_the_stream_of_a_key_limited_to_a_flag_using_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule is no flag, but its change moves the answers of the flags that ``$ref`` it: a key
    limited to one of those is told; a rule no flag of its uses tells it nothing."""
    monkeypatch.setattr(events_module, "KEEPALIVE", 0.2)
    narrow = {"Authorization": f"Bearer {WEB}"}
    with Rollout() as flags:
        flags.define_rule("paying", {"==": [{"var": "plan"}, "pro"]})
        flags.define_rule("staff", {"==": [{"var": "team"}, "ops"]})
        rule = {"if": [{"$ref": "paying"}, "gold"]}
        variants = {"gold": "gold", "basic": "basic"}
        flags.define_flag("tier", variants, default_variant="basic", targeting=rule)
        rule = {"if": [{"$ref": "staff"}, "gold"]}
        flags.define_flag("secret", variants, default_variant="basic", targeting=rule)
        app = create_app(
            flags,
            tokens={"ops": ADMIN, "web": WEB},
            scopes={"web": "evaluate"},
            token_flags={"web": ["tier"]},
        )
        with (
            dashboard_serve(app) as url,
            httpx.Client(base_url=url, timeout=30.0) as http,
        ):
            body = {"context": {"plan": "team"}}
            first = http.post(BULK, json=body, headers=narrow)
            assert [answer["value"] for answer in first.json()["flags"]] == ["basic"]
            uri = first.json()["eventStreams"][0]["endpoint"]["requestUri"]
            with http.stream("GET", uri) as events:
                lines = (line for line in events.iter_lines() if line)
                assert next(lines).startswith("retry:")
                flags.define_rule("staff", {"==": [{"var": "team"}, "web"]})
                seen = [next(lines), next(lines), next(lines)]  # keepalives only
                assert [line for line in seen if line.startswith("data:")] == []
                flags.define_rule("paying", {"in": [{"var": "plan"}, ["pro", "team"]]})
                data = next(line for line in lines if line.startswith("data:"))
                assert json.loads(data.removeprefix("data:")) == {"type": "refetchEvaluation"}
                again = http.post(BULK, json=body, headers=narrow)
                assert [answer["value"] for answer in again.json()["flags"]] == ["gold"]
