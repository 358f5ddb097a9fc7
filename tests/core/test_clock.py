"""The hybrid logical clock."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from rollout._core.clock import MIN_TIMESTAMP, HybridClock, Timestamp
from rollout.testing import FakeClock


def test_ticks_strictly_increase_when_the_wall_clock_stands_still_or_goes_back() -> None:
    wall = FakeClock(1_000)
    clock = HybridClock(wall, node=5)
    first = clock.tick()
    second = clock.tick()
    wall.set(500)  # the wall clock jumps backwards
    third = clock.tick()
    assert first < second < third
    assert (first.wall, second.wall, third.wall) == (1_000, 1_000, 1_000)
    assert (first.counter, second.counter, third.counter) == (0, 1, 2)


def test_a_forward_jump_of_the_wall_clock_is_accepted() -> None:
    wall = FakeClock(1_000)
    clock = HybridClock(wall, node=5)
    clock.tick()
    wall.advance(10**9)
    assert clock.tick() == Timestamp(1_000 + 10**9, 0, 5)


@given(
    walls=st.lists(st.integers(0, 10**6), min_size=1, max_size=50),
    remotes=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 50), st.integers(1, 9)), max_size=50
    ),
)
def test_the_clock_never_goes_backwards_and_follows_what_it_observed(
    walls: list[int], remotes: list[tuple[int, int, int]]
) -> None:
    wall = FakeClock(walls[0])
    clock = HybridClock(wall, node=5, max_offset_ms=10**9)
    issued = [clock.tick()]
    for i, step in enumerate(walls):
        wall.set(step)
        if i < len(remotes):
            remote = Timestamp(*remotes[i])
            clock.observe(remote)
            tick = clock.tick()
            assert tick > remote  # a write after seeing another is stamped after it
        else:
            tick = clock.tick()
        assert tick > issued[-1]
        issued.append(tick)


def test_observe_follows_the_hlc_receive_rules() -> None:
    wall = FakeClock(100)
    clock = HybridClock(wall, node=1)
    clock.observe(Timestamp(200, 7, 2))  # remote ahead: take its wall, counter + 1
    assert clock.last() == Timestamp(200, 8, 1)
    clock.observe(Timestamp(200, 3, 2))  # same wall, smaller counter: max(...) + 1
    assert clock.last() == Timestamp(200, 9, 1)
    clock.observe(Timestamp(150, 99, 2))  # remote behind: local counter + 1
    assert clock.last() == Timestamp(200, 10, 1)
    wall.set(300)
    clock.observe(Timestamp(250, 4, 2))  # physical time ahead of both: counter resets
    assert clock.last() == Timestamp(300, 0, 1)


def test_too_far_ahead_compares_with_the_physical_clock_and_max_offset() -> None:
    clock = HybridClock(FakeClock(1_000_000), node=1, max_offset_ms=30_000)
    assert not clock.too_far_ahead(Timestamp(1_030_000, 0, 2))
    assert clock.too_far_ahead(Timestamp(1_030_001, 0, 2))
    assert not clock.too_far_ahead(Timestamp(0, 0, 2))


def test_node_ids_are_random_nonzero_and_above_the_default_timestamp() -> None:
    nodes = {HybridClock().node for _ in range(50)}
    assert len(nodes) == 50
    assert all(0 < node < 2**63 for node in nodes)
    assert HybridClock(FakeClock(1)).tick() > MIN_TIMESTAMP


def test_a_forked_child_draws_a_new_node_id() -> None:
    clock = HybridClock()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its node id and leaves at once
        os.close(read_end)
        os.write(write_end, str(clock.node).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_node = int(pipe.read())
    os.waitpid(pid, 0)
    assert child_node != clock.node
    assert 0 < child_node < 2**63


def test_observe_never_moves_the_clock_past_max_offset_ahead_of_the_wall_clock() -> None:
    wall = FakeClock(1_000_000)
    clock = HybridClock(wall, node=1, max_offset_ms=30_000)
    assert clock.observe(Timestamp(1_030_000, 4, 2)) is True  # at the bound: the HLC rule
    assert clock.last() == Timestamp(1_030_000, 5, 1)
    assert clock.observe(Timestamp(4_600_000, 0, 2)) is False  # an hour ahead: ignored
    assert clock.last() == Timestamp(1_030_000, 5, 1)
    assert not clock.runs_ahead()


def test_a_wall_clock_stepping_back_is_seen_and_the_clock_can_be_re_based() -> None:
    wall = FakeClock(4_600_000)
    clock = HybridClock(wall, node=1, max_offset_ms=30_000)
    clock.tick()
    wall.set(1_000_000)  # NTP steps back an hour
    assert clock.runs_ahead()
    clock.rebase(Timestamp(900_000, 3, 7))  # the newest timestamp the node still holds
    assert not clock.runs_ahead()
    assert clock.tick() == Timestamp(1_000_000, 0, 1)  # stamped now again
    clock.rebase(Timestamp(2_000_000, 0, 7))  # never forwards
    assert clock.last() == Timestamp(1_000_000, 0, 1)
