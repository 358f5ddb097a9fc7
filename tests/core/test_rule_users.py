"""Which flags and rules a change of named rules reaches, through chains of ``$ref``."""

from __future__ import annotations

from typing import Any

import pytest

from rollout._core import defined
from rollout._core.defined import users_of_rules

LEAF = {"==": [{"var": "x"}, 1]}


def chain(length: int) -> dict[str, Any]:
    """e0 -> e1 -> ... -> e<length>, the last one a plain rule."""
    rules: dict[str, Any] = {f"e{i}": {"$ref": f"e{i + 1}"} for i in range(length)}
    rules[f"e{length}"] = LEAF
    return rules


def test_a_change_reaches_users_through_chains_diamonds_and_cycles() -> None:
    rules = {
        **chain(3),
        "left": {"$ref": "e3"},
        "right": {"!": {"$ref": "e3"}},
        "diamond": {"or": [{"$ref": "left"}, {"$ref": "right"}]},
        "a": {"$ref": "b"},  # a cycle (two peers' concurrent writes can make one)
        "b": {"$ref": "a"},
        "alone": LEAF,
    }
    uses = [
        ("top", {"$ref": "e0"}),
        ("both", {"$ref": "diamond"}),
        ("looping", {"$ref": "a"}),
        ("other", {"$ref": "alone"}),
        ("plain", {"var": "x"}),
        ("gone", {"$ref": "removed"}),
    ]
    assert users_of_rules({"e3"}, uses, rules) == {"top", "both"}
    assert users_of_rules({"b"}, uses, rules) == {"looping"}
    assert users_of_rules({"removed"}, uses, rules) == {"gone"}
    assert users_of_rules(set(), uses, rules) == set()


def test_each_rule_is_read_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    # A flagd file can hold thousands of evaluators in a chain. Searching the chain to a fixed
    # point rescanned every rule once per link (quadratic: seconds at 2,000 rules, with the
    # replica's lock held); each rule's references are read once now.
    rules = chain(300)
    reads: list[Any] = []
    real = defined.rule_refs

    def counted(rule: Any) -> set[str]:
        reads.append(rule)
        return real(rule)

    monkeypatch.setattr(defined, "rule_refs", counted)
    assert users_of_rules({"e300"}, [("f", {"$ref": "e0"})], rules) == {"f"}
    assert len(reads) <= len(rules) + 1
