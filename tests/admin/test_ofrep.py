"""OFREP's two endpoints as a client sees them: answers, errors, reasons, ETag and 304.

The answers are checked against the in-process OpenFeature provider's (the same flags, the same
contexts): a flag must answer the same over HTTP as in the application.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest
from openfeature.evaluation_context import EvaluationContext

from rollout import Rollout
from rollout.admin import create_app
from rollout.openfeature import RolloutProvider

from .api_helpers import BEARER, TOKEN, asgi_client

BULK = "/ofrep/v1/evaluate/flags"


def seeded(flags: Rollout) -> Rollout:
    flags.activate("everyone")
    flags.set("nobody", False)
    flags.activate_percentage("half", 50)
    flags.activate_users("vip", ["alice"])
    flags.set_feature_data("vip", {"team": "growth", "cost": 3, "nested": {"x": 1}})
    flags.activate_users("color", ["alice"])
    flags.set_feature_data("color", {"value": "blue", "off_value": "grey"})
    flags.activate_users("limit", ["alice"])
    flags.set_feature_data("limit", {"value": 10})  # no off_value: the caller's default
    flags.activate_users("layout", ["alice"])
    flags.set_feature_data("layout", {"value": {"columns": [1, 2]}, "off_value": {"columns": []}})
    flags.activate_group("pro-only", "pro")
    flags.define_group("pro", lambda user: getattr(user, "plan", None) == "pro")
    return flags


def post(path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    """One request to a fresh app over seeded flags: (status, headers, JSON or None)."""

    async def run() -> Any:
        with seeded(Rollout()) as flags:
            async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as http:
                response = await http.post(path, json=body, headers=headers)
                json = response.json() if response.content else None
                return response.status_code, response.headers, json

    return asyncio.run(run())


def single(key: str, context: dict[str, Any] | None) -> tuple[int, Any]:
    status, _, body = post(f"{BULK}/{key}", {} if context is None else {"context": context})
    return status, body


@pytest.mark.parametrize(
    ("key", "context", "answer"),
    [
        ("everyone", None, {"value": True, "reason": "STATIC", "variant": "on"}),
        ("nobody", {"targetingKey": "a"}, {"value": False, "reason": "DISABLED", "variant": "off"}),
        ("vip", {"targetingKey": "alice"}, {"value": True, "reason": "TARGETING_MATCH"}),
        ("vip", {"targetingKey": "bob"}, {"value": False, "reason": "DEFAULT", "variant": "off"}),
        ("color", {"targetingKey": "alice"}, {"value": "blue", "variant": "on"}),
        ("color", {"targetingKey": "bob"}, {"value": "grey", "variant": "off"}),
        ("layout", {"targetingKey": "alice"}, {"value": {"columns": [1, 2]}}),
        ("pro-only", {"targetingKey": "c", "plan": "pro"}, {"value": True}),
        ("pro-only", {"targetingKey": "c", "plan": "free"}, {"value": False}),
    ],
)
def test_a_flag_answers_its_value_reason_and_variant(
    key: str, context: dict[str, Any] | None, answer: dict[str, Any]
) -> None:
    status, body = single(key, context)
    assert status == 200
    assert body["key"] == key
    assert answer.items() <= body.items()


def test_off_without_an_off_value_leaves_the_value_to_the_callers_default() -> None:
    status, body = single("limit", {"targetingKey": "bob"})
    assert status == 200
    assert "value" not in body  # OFREP's code default
    assert body["reason"] == "DEFAULT"


def test_data_scalars_are_the_flags_metadata() -> None:
    # The data's scalars, beside the rule that decided (as the in-process provider gives them).
    _, body = single("vip", {"targetingKey": "alice"})
    assert body["metadata"] == {
        "team": "growth",
        "cost": 3,
        "rule": "listed",
        "percentage": 0.0,
        "percentage_of_time": 0.0,
    }


@pytest.mark.parametrize(
    ("key", "context", "status", "code"),
    [
        ("missing", {"targetingKey": "a"}, 404, "FLAG_NOT_FOUND"),
        ("half", None, 400, "TARGETING_KEY_MISSING"),
        ("half", {"targetingKey": ""}, 400, "TARGETING_KEY_MISSING"),
        ("half", {"targetingKey": 7.5}, 400, "INVALID_CONTEXT"),
        ("half", ["not", "an", "object"], 400, "INVALID_CONTEXT"),
    ],
)
def test_errors_are_ofreps(key: str, context: Any, status: int, code: str) -> None:
    got, body = single(key, context)
    assert (got, body["errorCode"], body["key"]) == (status, code, key)
    assert body["errorDetails"]


def test_a_flag_whose_on_and_off_values_differ_in_type_is_a_parse_error() -> None:
    async def run() -> Any:
        with Rollout() as flags:
            flags.set_feature_data("odd", {"value": "blue", "off_value": 3})
            async with asgi_client(create_app(flags)) as http:
                return await http.post(f"{BULK}/odd", json={"context": {"targetingKey": "a"}})

    response = asyncio.run(run())
    assert response.status_code == 400
    assert response.json()["errorCode"] == "PARSE_ERROR"
    assert "off_value" in response.json()["errorDetails"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"NaN",
        b'{"context": {"targetingKey": "a"}',
        b'{"context": {"targetingKey": "alice", "n": -Infinity}}',
        b"[" * 100_000,  # nested too deeply
    ],
)
def test_a_body_that_is_not_json_is_a_parse_error(raw: bytes) -> None:
    async def run() -> Any:
        with seeded(Rollout()) as flags:
            async with asgi_client(create_app(flags)) as http:
                return await http.post(f"{BULK}/vip", content=raw)

    response = asyncio.run(run())
    assert response.status_code == 400
    assert response.json()["errorCode"] == "PARSE_ERROR"


def test_a_body_in_utf_16_or_32_or_with_a_byte_order_mark_is_read() -> None:
    body = '{"context": {"targetingKey": "alice", "city": "Zürich"}}'

    async def run() -> list[Any]:
        with seeded(Rollout()) as flags:
            async with asgi_client(create_app(flags)) as http:
                return [
                    (await http.post(f"{BULK}/vip", content=body.encode(codec))).json()["value"]
                    for codec in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be")
                ]

    assert asyncio.run(run()) == [True] * 5


def test_names_with_a_slash_travel_encoded_and_bad_names_are_not_found() -> None:
    async def run() -> list[Any]:
        with Rollout() as flags:
            flags.activate("checkout/new")
            async with asgi_client(create_app(flags)) as http:
                body = {"context": {"targetingKey": "a"}}
                return [
                    await http.post(f"{BULK}/checkout%2Fnew", json=body),
                    await http.post(f"{BULK}/bad%00name", json=body),
                ]

    good, bad = asyncio.run(run())
    assert (good.status_code, good.json()["key"], good.json()["value"]) == (
        200,
        "checkout/new",
        True,
    )
    assert (bad.status_code, bad.json()["errorCode"]) == (404, "FLAG_NOT_FOUND")


CONTEXTS = [
    None,
    {"targetingKey": "alice"},
    {"targetingKey": "bob", "plan": "pro"},
    {"targetingKey": "u7", "plan": "free"},
]


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_flag_answers_as_the_in_process_provider_does(context: Any) -> None:
    """Bulk over HTTP, against the provider's typed resolution of the same flag in process."""
    _, _, body = post(BULK, {} if context is None else {"context": context})
    with seeded(Rollout()) as flags:
        provider = RolloutProvider(flags)
        attributes = dict(context or {})
        of_context = EvaluationContext(attributes.pop("targetingKey", None), attributes)
        by_key = {answer["key"]: answer for answer in body["flags"]}
        assert sorted(by_key) == flags.features()
        for key, answer in by_key.items():
            # Resolved locally as the type of the flag's own value (a boolean flag has none);
            # an answer without a value (off, no off_value) leaves the code default.
            typed = flags.get(key).data.get("value", False)
            value = answer.get("value", typed)
            resolve = {
                bool: provider.resolve_boolean_details,
                str: provider.resolve_string_details,
                int: provider.resolve_integer_details,
                dict: provider.resolve_object_details,
            }[type(typed)]
            local = resolve(key, value, of_context)  # type: ignore[operator]
            if local.error_code is not None:
                assert answer["errorCode"] == local.error_code.value
                continue
            assert answer["reason"] == local.reason
            assert answer.get("value", value) == local.value
            assert answer["variant"] == (local.variant or "off")
            assert answer["metadata"] == dict(local.flag_metadata)


# Bulk: ETag and 304 -----------------------------------------------------------------------


def test_a_poll_with_the_etag_is_a_304_that_evaluates_nothing_until_a_flag_changes() -> None:
    calls: list[object] = []

    async def run() -> list[Any]:
        with seeded(Rollout()) as flags:

            def pro(user: object) -> bool:
                calls.append(user)
                return False

            flags.define_group("pro", pro)
            async with asgi_client(create_app(flags), headers={}) as http:
                body = {"context": {"targetingKey": "bob", "plan": "pro"}}
                first = await http.post(BULK, json=body)
                etag = first.headers["etag"]
                evaluated = len(calls)
                again = await http.post(BULK, json=body, headers={"If-None-Match": etag})
                weak = await http.post(BULK, json=body, headers={"If-None-Match": f'"x", W/{etag}'})
                other = await http.post(
                    BULK, json={"context": {"targetingKey": "eve"}}, headers={"If-None-Match": etag}
                )
                assert len(calls) == evaluated + 1  # only `other` ran the predicate
                flags.activate_users("vip", ["bob"])
                changed = await http.post(BULK, json=body, headers={"If-None-Match": etag})
                return [first, again, weak, other, changed]

    first, again, weak, other, changed = asyncio.run(run())
    assert first.status_code == 200
    assert (again.status_code, again.content, again.headers["etag"]) == (
        304,
        b"",
        first.headers["etag"],
    )
    assert weak.status_code == 304
    assert other.status_code == 200
    assert other.headers["etag"] != first.headers["etag"]
    assert changed.status_code == 200
    assert changed.headers["etag"] != first.headers["etag"]
    vip = next(a for a in changed.json()["flags"] if a["key"] == "vip")
    assert vip["value"] is True


def test_bulk_reports_a_flag_it_cannot_evaluate_for_the_context_among_the_others() -> None:
    status, _, body = post(BULK, {})  # no targeting key: `half` needs one
    assert status == 200
    half = next(a for a in body["flags"] if a["key"] == "half")
    assert half["errorCode"] == "TARGETING_KEY_MISSING"
    assert next(a for a in body["flags"] if a["key"] == "everyone")["value"] is True


def test_bulk_refuses_a_context_that_is_not_an_object_whole() -> None:
    status, _, body = post(BULK, {"context": "alice"})
    assert status == 400
    assert body["errorCode"] == "INVALID_CONTEXT"
    assert "key" not in body


def test_an_app_served_without_its_lifespan_still_counts_changes_for_the_etag() -> None:
    """Mounted in another app (whose Mount does not run this app's lifespan): the first
    request subscribes, so a change still ends the 304s."""

    async def run() -> list[int]:
        with seeded(Rollout()) as flags:
            transport = httpx.ASGITransport(app=create_app(flags))  # no lifespan run
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                first = await http.post(BULK, json={})
                etag = {"If-None-Match": first.headers["etag"]}
                same = await http.post(BULK, json={}, headers=etag)
                flags.activate("nobody")
                changed = await http.post(BULK, json={}, headers=etag)
                return [first.status_code, same.status_code, changed.status_code]

    assert asyncio.run(run()) == [200, 304, 200]


def test_without_the_openfeature_sdk_ofrep_says_which_extra_it_needs() -> None:
    # In a fresh interpreter where `openfeature` cannot be imported; the rest of the app works.
    program = """
import sys
sys.modules["openfeature"] = None
import httpx, asyncio
from rollout import Rollout
from rollout.admin import create_app

async def main():
    with Rollout() as flags:
        transport = httpx.ASGITransport(app=create_app(flags))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            ofrep = await http.post("/ofrep/v1/evaluate/flags", json={})
            api = await http.get("/api/v1/flags")
            print(ofrep.status_code, ofrep.json()["errorDetails"], api.status_code)

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("501 OFREP needs openfeature-sdk: pip install")
    assert done.stdout.rstrip().endswith(" 200")


@pytest.mark.parametrize("late", ["the group's definition", "the group on the flag"])
def test_a_flag_answered_on_the_event_loop_moves_off_it_once_it_may_run_code(late: str) -> None:
    # A flag that runs no code (here: a group nothing defines) is answered on the event loop;
    # once its group is defined, or a defined group added to it, it must not be any more.
    release, entered = threading.Event(), threading.Event()

    def slow(_user: object) -> bool:
        entered.set()
        return release.wait(20)  # True once the server answered another request meanwhile

    async def run() -> tuple[bool, int, Any]:
        with Rollout() as flags:
            if late == "the group's definition":
                flags.activate_group("gated", "slow")
            else:
                flags.define_group("slow", slow)
                flags.activate_percentage("gated", 0)
            async with asgi_client(create_app(flags), headers={}) as http:
                body = {"context": {"targetingKey": "bob"}}
                before = (await http.post(f"{BULK}/gated", json=body)).json()["value"]
                if late == "the group's definition":
                    flags.define_group("slow", slow)
                else:
                    flags.activate_group("gated", "slow")
                pending = asyncio.ensure_future(http.post(f"{BULK}/gated", json=body))
                while not entered.is_set():
                    await asyncio.sleep(0.01)
                live = await http.get("/livez")
                release.set()
                answer = await pending
                return before, live.status_code, answer.json()["value"]

    assert asyncio.run(run()) == (False, 200, True)


def test_a_slow_evaluation_of_one_flag_does_not_hold_the_other_requests() -> None:
    # A group's predicate is the application's code, and a rule may take its (bounded) time:
    # one flag's evaluation ran on the event loop, and every other request waited for it.
    release, entered = threading.Event(), threading.Event()

    def slow(_user: object) -> bool:
        entered.set()
        return release.wait(20)  # True once the server answered another request meanwhile

    async def run() -> tuple[int, Any]:
        with Rollout() as flags:
            flags.define_group("slow", slow)
            flags.activate_group("gated", "slow")
            async with asgi_client(create_app(flags), headers={}) as http:
                body = {"context": {"targetingKey": "bob"}}
                pending = asyncio.ensure_future(http.post(f"{BULK}/gated", json=body))
                while not entered.is_set():
                    await asyncio.sleep(0.01)
                live = await http.get("/livez")
                release.set()
                answer = await pending
                return live.status_code, answer.json()["value"]

    assert asyncio.run(run()) == (200, True)
