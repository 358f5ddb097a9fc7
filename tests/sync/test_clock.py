"""The clock judge: a node's clock judged by the majority of its peers, never by one outlier."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.sync._clock import ClockJudge, judge

LIMIT = 30_000  # the default max_offset
SLOW = 120_000  # two minutes behind
HOUR = 3_600_000


def verdict_of(clocks: list[int], i: int, limit: int = LIMIT) -> str:
    """Node i's verdict when it hears every other node's clock (offset: theirs - ours)."""
    offsets = {f"n{j}": c - clocks[i] for j, c in enumerate(clocks) if j != i}
    return judge(offsets, limit, confirmed=True, needs_confirmation=True).state


def test_one_slow_node_of_three_stops_only_itself_and_says_it_is_behind() -> None:
    clocks = [0, 0, -SLOW]
    assert [verdict_of(clocks, i) for i in range(3)] == ["ok", "ok", "outlier"]
    healthy = judge({"n1": 0, "n2": -SLOW}, LIMIT, confirmed=False, needs_confirmation=True)
    assert healthy.writable
    assert healthy.disagreeing == ("n2",)
    slow = judge({"n0": SLOW, "n1": SLOW}, LIMIT, confirmed=False, needs_confirmation=True)
    assert not slow.writable
    assert slow.problem is not None
    assert f"{SLOW} ms behind the majority" in slow.problem


def test_one_fast_node_of_three_says_it_is_ahead() -> None:
    fast = judge({"n0": -HOUR, "n1": -HOUR + 5}, LIMIT, confirmed=True, needs_confirmation=True)
    assert fast.state == "outlier"
    assert fast.problem is not None
    assert "ahead of the majority" in fast.problem


def test_five_nodes_with_one_slow_and_one_fast_the_three_healthy_write() -> None:
    clocks = [0, 3, -7, -SLOW, HOUR]
    states = [verdict_of(clocks, i) for i in range(5)]
    assert states == ["ok", "ok", "ok", "outlier", "outlier"]


def test_two_nodes_that_disagree_both_refuse_with_no_majority() -> None:
    for i in range(2):
        verdict = judge(
            {"other": [30_001, -30_001][i]}, LIMIT, confirmed=True, needs_confirmation=True
        )
        assert verdict.state == "no_majority"
        assert verdict.problem is not None
        assert "no majority" in verdict.problem
        assert "other (" in verdict.problem  # names who disagrees
        assert "add a node" in verdict.problem  # and the fixes


def test_two_against_two_is_no_majority_on_both_sides() -> None:
    clocks = [0, 1, SLOW, SLOW + 1]
    assert {verdict_of(clocks, i) for i in range(4)} == {"no_majority"}


def test_exactly_half_of_max_offset_agrees_one_more_millisecond_does_not() -> None:
    assert verdict_of([0, LIMIT // 2], 0) == "ok"
    assert verdict_of([0, LIMIT // 2 + 1], 0) == "no_majority"


def test_a_node_with_peers_is_unconfirmed_until_a_peer_agrees_then_writes_alone() -> None:
    judge_ = ClockJudge(LIMIT, needs_confirmation=True)
    assert judge_.verdict.state == "unconfirmed"
    assert judge_.verdict.problem is not None
    assert "not confirmed" in judge_.verdict.problem
    assert judge_.update({}, LIMIT).state == "unconfirmed"
    # An outlier is not a confirmation.
    assert judge_.update({"a": SLOW, "b": SLOW}, LIMIT).state == "outlier"
    assert judge_.update({}, LIMIT).state == "unconfirmed"
    assert judge_.update({"a": 10}, LIMIT).state == "ok"
    assert judge_.update({}, LIMIT).state == "ok"  # confirmed once: alone, it keeps writing


def test_a_node_without_peers_writes_from_the_start() -> None:
    assert ClockJudge(LIMIT, needs_confirmation=False).verdict.writable


def test_the_stats_section_summarises_the_offsets() -> None:
    verdict = judge({"a": 5, "b": -SLOW, "c": 9}, LIMIT, confirmed=True, needs_confirmation=True)
    described = verdict.describe()
    assert described["state"] == "ok"
    assert described["writable"] is True
    assert described["voters"] == 4
    assert described["agreeing"] == 3
    assert described["disagreeing"] == ["b"]
    assert described["offsets_ms"] == {"a": 5, "b": -SLOW, "c": 9}
    assert (described["offset_min_ms"], described["offset_max_ms"]) == (-SLOW, 9)
    assert described["offset_median_ms"] == 5


def test_changes_are_logged_once_not_on_every_digest(caplog: pytest.LogCaptureFixture) -> None:
    judge_ = ClockJudge(LIMIT, needs_confirmation=False)
    with caplog.at_level(logging.WARNING, logger="rollout.sync"):
        for offset in range(SLOW, SLOW + 20):  # an offset moves by a millisecond each digest
            judge_.update({"a": offset, "b": offset + 1}, LIMIT)
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        for offset in range(20):
            judge_.update({"a": offset, "b": offset}, LIMIT)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "agrees with the majority again" in messages[1]


# Properties -------------------------------------------------------------------------------------

clocks_ms = st.lists(st.integers(-2 * HOUR, 2 * HOUR), min_size=1, max_size=9)
limits_ms = st.integers(1, 60_000)


@given(clocks_ms, limits_ms)
def test_two_writers_are_never_further_apart_than_max_offset(clocks: list[int], limit: int) -> None:
    # Two nodes that both write share a majority, so some node is within half of max_offset of
    # both: so neither's registers ever look like the future to the other (nothing of a writing
    # node is quarantined by another).
    writers = [c for i, c in enumerate(clocks) if verdict_of(clocks, i, limit) == "ok"]
    if writers:
        assert max(writers) - min(writers) <= limit


@given(
    st.lists(st.integers(0, 60_000), min_size=1, max_size=5),
    st.lists(st.integers(0, 60_000), min_size=1, max_size=5),
    limits_ms,
    st.integers(1, HOUR),
)
def test_at_most_one_side_of_a_split_is_in_the_majority(
    left: list[int], right: list[int], limit: int, gap: int
) -> None:
    # Every clock on the right is more than max_offset past every clock on the left.
    shift = max(left) + limit + gap - min(right)
    clocks = left + [c + shift for c in right]
    states = [verdict_of(clocks, i, limit) for i in range(len(clocks))]
    left_writes = "ok" in states[: len(left)]
    right_writes = "ok" in states[len(left) :]
    assert not (left_writes and right_writes)
    if len(left) == len(right):  # a tie: nobody writes
        assert not left_writes
        assert not right_writes


@given(clocks_ms, limits_ms)
def test_every_verdict_is_one_of_the_four_and_refusal_has_a_reason(
    clocks: list[int], limit: int
) -> None:
    for i in range(len(clocks)):
        offsets = {f"n{j}": c - clocks[i] for j, c in enumerate(clocks) if j != i}
        verdict = judge(offsets, limit, confirmed=False, needs_confirmation=True)
        assert verdict.state in {"ok", "outlier", "no_majority", "unconfirmed"}
        assert (verdict.problem is None) == (verdict.state == "ok")
        assert (verdict.state == "unconfirmed") == (len(clocks) == 1)  # never confirmed
