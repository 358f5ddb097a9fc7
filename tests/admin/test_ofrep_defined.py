"""OFREP for flags with a definition (variants, a default variant, targeting as data): the
answers are the in-process provider's, errors and named rules included, and a change to a named
rule moves the ETag of a key limited to the flags that use it.

flagd's evaluator testkit over OFREP is in tests/openfeature/testkit/.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext

from rollout import Rollout
from rollout.admin import create_app
from rollout.openfeature import RolloutProvider

from .api_helpers import asgi_client

BULK = "/ofrep/v1/evaluate/flags"
TOKENS = {"ops": "ops-secret", "narrow": "narrow-secret"}
NARROW = {"Authorization": "Bearer narrow-secret"}
OPS = {"Authorization": "Bearer ops-secret"}


def defined(flags: Rollout) -> Rollout:
    flags.define_rule("pro", {"in": [{"var": "plan"}, ["pro", "enterprise"]]})
    flags.define_flag(
        "color",
        {"red": "#f00", "blue": "#00f"},
        default_variant="red",
        targeting={"if": [{"$ref": "pro"}, "blue"]},
        metadata={"owner": "web", "ticket": 7},
    )
    flags.define_flag("quiet", {"on": True, "off": False}, default_variant="on", enabled=False)
    flags.define_flag(
        "tier",
        {"gold": {"discount": 10}, "none": {}},
        default_variant=None,
        targeting={"if": [{"==": [{"var": "targetingKey"}, "alice"]}, "gold", None]},
    )
    flags.define_flag(
        "broken",
        {"a": 1, "b": 2},
        default_variant="a",
        targeting={"if": [{"$ref": "missing"}, "b"]},
        metadata={"owner": "ops"},
    )
    flags.activate("chat")  # an on/off flag among them, answering as before
    return flags


def bulk(context: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async def run() -> tuple[int, dict[str, Any]]:
        with defined(Rollout()) as flags:
            app = create_app(flags, tokens=TOKENS)
            async with asgi_client(app, headers=OPS) as http:
                response = await http.post(BULK, json={"context": context})
                return response.status_code, response.json()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("context", "color"),
    [
        ({}, "#f00"),
        ({"targetingKey": "alice"}, "#f00"),
        ({"targetingKey": "bob", "plan": "pro"}, "#00f"),
        ({"plan": "free"}, "#f00"),
    ],
)
def test_bulk_answers_every_defined_flag_as_the_provider_does(
    context: dict[str, Any], color: str
) -> None:
    status, body = bulk(context)
    assert status == 200
    answers = {answer["key"]: answer for answer in body["flags"]}
    assert sorted(answers) == ["broken", "chat", "color", "quiet", "tier"]  # no named rule
    assert answers["color"]["value"] == color
    with defined(Rollout()) as flags:
        provider = RolloutProvider(flags, status_interval=None)
        attributes = dict(context)
        key = attributes.pop("targetingKey", None)
        for name in ["color", "quiet", "tier"]:
            local = provider.resolve_value_details(name, EvaluationContext(key, attributes))
            expected: dict[str, Any] = {
                "key": name,
                "reason": str(local.reason),
                "variant": local.variant or "",
                "metadata": dict(local.flag_metadata),
            }
            if local.value is not None:
                expected["value"] = local.value
            assert answers[name] == expected


def test_answers_for_each_kind_of_resolution() -> None:
    _, body = bulk({"targetingKey": "alice", "plan": "pro"})
    answers = {answer["key"]: answer for answer in body["flags"]}
    assert answers["color"] == {
        "key": "color", "value": "#00f", "variant": "blue", "reason": "TARGETING_MATCH",
        "metadata": {"owner": "web", "ticket": 7},
    }  # fmt: skip
    assert answers["tier"]["value"] == {"discount": 10}
    # Disabled: no value (the client's code default) and no variant name.
    assert answers["quiet"] == {"key": "quiet", "variant": "", "reason": "DISABLED", "metadata": {}}
    # A $ref to a rule that does not exist: an error item among the others, with its metadata.
    assert answers["broken"]["errorCode"] == "PARSE_ERROR"
    assert answers["broken"]["metadata"] == {"owner": "ops"}
    assert "value" not in answers["broken"]
    assert answers["chat"] == {
        "key": "chat", "value": True, "variant": "on", "reason": "STATIC", "metadata": {}
    }  # fmt: skip
    _, nobody = bulk({"targetingKey": "bob"})
    tier = next(answer for answer in nobody["flags"] if answer["key"] == "tier")
    assert tier == {"key": "tier", "variant": "", "reason": "DEFAULT", "metadata": {}}


def test_a_single_defined_flag_and_its_error() -> None:
    async def run() -> list[Any]:
        with defined(Rollout()) as flags:
            async with asgi_client(create_app(flags, tokens=TOKENS), headers=OPS) as http:
                color = await http.post(f"{BULK}/color", json={"context": {"plan": "pro"}})
                broken = await http.post(f"{BULK}/broken", json={})
                rules = await http.post(f"{BULK}/%20rules", json={})
                return [color, broken, rules]

    color, broken, rules = asyncio.run(run())
    assert (color.status_code, color.json()["value"], color.json()["variant"]) == (
        200,
        "#00f",
        "blue",
    )
    assert broken.status_code == 400
    assert broken.json()["errorCode"] == "PARSE_ERROR"
    assert "missing" in broken.json()["errorDetails"]
    assert rules.status_code == 404  # the named rules are no flag


def test_a_named_rules_change_moves_the_etag_of_a_key_limited_to_a_flag_using_it() -> None:
    async def run() -> list[Any]:
        with defined(Rollout()) as flags:
            app = create_app(
                flags,
                tokens=TOKENS,
                scopes={"narrow": "evaluate"},
                token_flags={"narrow": ["color"]},
            )
            async with asgi_client(app, headers=NARROW) as http:
                body = {"context": {"targetingKey": "bob", "plan": "team"}}
                first = await http.post(BULK, json=body)
                etag = first.headers["etag"]
                flags.define_rule("unused", {"==": [1, 1]})
                unrelated = await http.post(BULK, json=body, headers={"If-None-Match": etag})
                flags.define_rule("pro", {"in": [{"var": "plan"}, ["pro", "team"]]})
                changed = await http.post(BULK, json=body, headers={"If-None-Match": etag})
                return [first, unrelated, changed]

    first, unrelated, changed = asyncio.run(run())
    assert [answer["value"] for answer in first.json()["flags"]] == ["#f00"]
    assert unrelated.status_code == 304
    assert changed.status_code == 200
    assert [answer["value"] for answer in changed.json()["flags"]] == ["#00f"]


def test_an_evaluation_token_cannot_stall_the_server_with_a_long_context_value() -> None:
    # The usual `age >= 18` rule reads a string age as a number; a context of nearly a
    # megabyte of digits ending in a letter once took hours of the event loop's time.
    async def run() -> tuple[int, dict[str, Any]]:
        with Rollout() as flags:
            flags.define_flag(
                "adult",
                {"yes": True, "no": False},
                default_variant="no",
                targeting={"if": [{">=": [{"var": "age"}, 18]}, "yes", None]},
            )
            app = create_app(flags, tokens=TOKENS, scopes={"narrow": "evaluate"})
            async with asgi_client(app, headers=NARROW) as http:
                context = {"targetingKey": "mallory", "age": "1" * 1_000_000 + "x"}
                response = await http.post(f"{BULK}/adult", json={"context": context})
                return response.status_code, response.json()

    status, body = asyncio.run(run())
    assert status == 200
    assert (body["variant"], body["reason"]) == ("no", "DEFAULT")


def test_a_context_integer_squared_past_what_python_writes_is_an_error_answer() -> None:
    # JSON allows an integer of 2,500 digits; its square as a variant name once raised out of
    # the resolution (Python writes no integer over 4,300 digits). JavaScript: a double.
    async def run() -> tuple[int, dict[str, Any]]:
        with Rollout() as flags:
            flags.define_flag(
                "square",
                {"small": 1, "large": 2},
                default_variant="small",
                targeting={"*": [{"var": "n"}, {"var": "n"}]},
            )
            app = create_app(flags, tokens=TOKENS, scopes={"narrow": "evaluate"})
            async with asgi_client(app, headers=NARROW) as http:
                body = '{"context": {"n": 1' + "0" * 2500 + "}}"
                response = await http.post(f"{BULK}/square", content=body)
                return response.status_code, response.json()

    status, body = asyncio.run(run())
    assert (status, body["errorCode"]) == (400, "GENERAL")
    assert "returned inf" in body["errorDetails"]


def test_a_deeply_nested_context_the_parser_takes_is_answered_not_crashed_on() -> None:
    # JSON nested 900 deep parses; turning the context into the engine's (datetimes as text)
    # recursed once per level and raised RecursionError out of the evaluation (a 500).
    async def run() -> list[tuple[int, dict[str, Any]]]:
        with defined(Rollout()) as flags:
            app = create_app(flags, tokens=TOKENS, scopes={"narrow": "evaluate"})
            async with asgi_client(app, headers=NARROW) as http:
                nested = "[" * 900 + "]" * 900
                body = '{"context": {"targetingKey": "bob", "plan": "pro", "x": ' + nested + "}}"
                single = await http.post(f"{BULK}/color", content=body)
                everything = await http.post(BULK, content=body)
                return [(r.status_code, r.json()) for r in (single, everything)]

    (status, answer), (bulk_status, bulk_body) = asyncio.run(run())
    assert (status, answer["value"], answer["reason"]) == (200, "#00f", "TARGETING_MATCH")
    assert bulk_status == 200
    assert {a["key"]: a.get("value") for a in bulk_body["flags"]}["color"] == "#00f"
