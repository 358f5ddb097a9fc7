"""The member table: what gossip may add to it is bounded."""

from __future__ import annotations

import logging

import pytest

from rollout.peer._membership import Members
from rollout.peer._messages import MAX_MEMBERS


def test_learning_stops_at_max_members_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    members = Members(["seed:1"], member_timeout=60.0)
    with caplog.at_level(logging.WARNING, logger="rollout.sync"):
        learned = [members.learn(f"10.0.{i // 250}.{i % 250}:7946") for i in range(MAX_MEMBERS)]
        assert members.learn("one-more:1") is None
    assert sum(m is not None for m in learned) == MAX_MEMBERS - 1  # the seed takes one place
    assert len(members.by_address) == MAX_MEMBERS
    assert "one-more:1" not in members.by_address
    assert [r.message for r in caplog.records if "not learning" in r.message] != []
    assert members.learn("seed:1") is None  # known already


def test_only_connected_members_are_told_to_peers() -> None:
    members = Members(["a:1", "b:1", "c:1"], member_timeout=60.0)
    members.mark_connected(members.by_address["b:1"], node=2)
    members.mark_connected(members.by_address["c:1"], node=3)
    members.mark_down(members.by_address["c:1"])
    assert members.connected_addresses() == ["b:1"]
