"""Flag definitions and named rules replicated between two real node processes over the peer
transport: a definition and a rule written on one node answer the same on the other, edits of
different variants made at once on both nodes are both kept, and a delete hides the definition
everywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout.testing.cluster import Cluster, Node

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
LAYOUT = {"wide": {"columns": 3}, "narrow": {"columns": 1}}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(2, tmp_path, anti_entropy_interval=0.2) as cluster:
        yield cluster


def evaluated(node: Node, flag: str, context: dict[str, Any]) -> list[Any]:
    answer: list[Any] = node.call("evaluate", flag, context)  # a Resolution, as a JSON list
    return answer


def test_a_definition_and_a_rule_answer_the_same_on_the_other_node(pair: Cluster) -> None:
    first, second = pair
    first.call("define_rule", "pro", PRO)
    first.call(
        "define_flag",
        "layout",
        LAYOUT,
        default_variant="narrow",
        targeting={"if": [{"$ref": "pro"}, "wide", None]},
    )
    pair.wait_until(lambda node: node.call("get", "layout").get("variants") == LAYOUT)
    pair.wait_until(lambda node: node.call("rules") == {"pro": PRO})
    for node in pair:
        assert evaluated(node, "layout", {"plan": "pro"}) == [
            {"columns": 3},
            "wide",
            "TARGETING_MATCH",
            None,
            None,
        ]
        assert evaluated(node, "layout", {"plan": "free"})[1:3] == ["narrow", "DEFAULT"]
    # A change of the rule on the other node recompiles the flag on both.
    second.call("define_rule", "pro", {"==": [{"var": "plan"}, "enterprise"]})
    pair.wait_until(lambda node: evaluated(node, "layout", {"plan": "pro"})[1] == "narrow")
    assert [e["action"] for e in first.call("history", "layout")] == ["define_flag"]
    assert first.call("features") == ["layout"]  # the rules are no flag


def test_edits_of_different_variants_made_at_once_are_both_kept(pair: Cluster) -> None:
    first, second = pair
    first.call("define_flag", "tiers", {"a": 1, "b": 2}, default_variant="a")
    pair.wait_until(lambda node: node.call("exists", "tiers"))
    start = threading.Barrier(2)

    def edit(node: Node, variant: str, value: int) -> None:
        start.wait()
        node.call("set_variant", "tiers", variant, value)

    threads = [
        threading.Thread(target=edit, args=(first, "a", 10)),
        threading.Thread(target=edit, args=(second, "b", 20)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = pair.wait_converged()
    assert state["tiers"]["variants"] == {"a": 10, "b": 20}


def test_a_delete_hides_the_definition_on_every_node(pair: Cluster) -> None:
    first, second = pair
    first.call("define_flag", "old", {"x": True}, default_variant="x")
    pair.wait_until(lambda node: node.call("active", "old", "u1"))
    second.call("delete", "old")
    pair.wait_until(lambda node: not node.call("exists", "old"))
    for node in pair:
        assert evaluated(node, "old", {})[2:4] == ["ERROR", "FLAG_NOT_FOUND"]
        assert node.call("active", "old", "u1") is False
