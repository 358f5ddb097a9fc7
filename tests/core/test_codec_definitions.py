"""The replication format checks the definition and rule registers a peer, a merge or a store
brings before anything is applied: each refusal names the flag, the key and what is wrong, and a
blob with one bad register changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout import Rollout
from rollout._core.codec import decode
from rollout._core.keys import RULES_ENTITY
from rollout._core.stored_values import decode_stored
from rollout.errors import FormatError

TS = [1_700_000_000_000, 0, 7]
RULE = {"in": [{"var": "plan"}, ["pro"]]}


def blob(flags: dict[str, dict[str, Any]]) -> bytes:
    return json.dumps({"format": "rollout", "version": 1, "flags": flags}).encode()


def test_good_definition_and_rule_registers_decode() -> None:
    delta = decode(
        blob(
            {
                "f": {
                    "definition_reset": TS,
                    "variant:on": [*TS, True],
                    "variant:gone": [*TS, None],
                    "default_variant": [*TS, "on"],
                    "targeting": [*TS, {"if": [RULE, "on", None]}],
                    "disabled": [*TS, False],
                },
                RULES_ENTITY: {"rule:pro": [*TS, RULE], "rule:old": [*TS, None]},
            }
        )
    )
    assert delta["f"]["variant:on"].value is True
    assert delta["f"]["definition_reset"].value is None
    assert delta[RULES_ENTITY]["rule:pro"].value == RULE


@pytest.mark.parametrize(
    ("name", "key", "value", "words"),
    [
        ("f", "variant:a", [1, 2], "value must be a boolean, string, number or object"),
        ("f", "variant: a", 1, "the name must not begin or end with whitespace"),
        ("f", "default_variant", 3, "value must be a variant name or null"),
        ("f", "targeting", {"nope": [1]}, "not a rule the engine accepts"),
        ("f", "disabled", "yes", "value must be true or false"),
        ("f", "rule:pro", RULE, "unknown register key"),  # rules live on the rules entity
        (RULES_ENTITY, "exists", True, "unknown register key"),  # which is never a flag
        (RULES_ENTITY, "variant:a", 1, "unknown register key"),
        (RULES_ENTITY, "rule:pro", {"==": [1]}, "not a rule the engine accepts"),
    ],
)
def test_a_bad_register_is_refused_and_nothing_is_merged(
    name: str, key: str, value: object, words: str
) -> None:
    data = blob({"good": {"exists": [*TS, True]}, name: {key: [*TS, value]}})
    with pytest.raises(FormatError, match=words) as raised:
        decode(data)
    assert repr(key) in str(raised.value)
    flags = Rollout()
    with pytest.raises(FormatError):
        flags.merge(data)
    assert flags.features() == []


def test_a_store_row_is_checked_the_same_way() -> None:
    assert decode_stored(RULES_ENTITY, "rule:pro", json.dumps(RULE)) == RULE
    with pytest.raises(FormatError, match="unknown register key"):
        decode_stored("f", "rule:pro", json.dumps(RULE))
    with pytest.raises(FormatError, match="not a rule the engine accepts"):
        decode_stored("f", "targeting", '{"==": [1]}')
