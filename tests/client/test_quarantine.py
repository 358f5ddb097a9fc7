"""The quarantine, in one process: registers stamped too far ahead are held, never applied on
their own, visible, and resolved deliberately; a store or a stepped-back wall clock never
poisons this node's clock. (With real node processes: tests/peer/test_quarantine_cluster.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout
from rollout._client.quarantine import QUARANTINE_LIMIT, Quarantine
from rollout._core.clock import Timestamp
from rollout._core.codec import encode
from rollout._core.state import Register
from rollout.memory import MemoryStore
from rollout.testing import FakeClock

HOUR = 3_600_000
START = 1_700_000_000_000


def _walls(flags: Rollout) -> set[int]:
    blob = json.loads(flags.export())["flags"]
    return {register[0] for registers in blob.values() for register in registers.values()}


def test_a_future_register_stays_refused_after_this_clock_catches_up() -> None:
    here, ahead = FakeClock(START), FakeClock(START + HOUR)
    with Rollout(clock=here) as receiver, Rollout(clock=ahead) as sender:
        sender.activate_user("chat", 42)
        assert receiver.merge(sender.export()) == set()
        held = receiver.quarantined()
        assert [(e.flag, e.key, e.value, e.origin) for e in held] == [
            ("chat", "exists", True, "merge"),
            ("chat", "user:42", True, "merge"),
        ]
        assert held[0].node == f"{sender.stats()['node']}"
        assert held[0].ahead_ms == HOUR
        assert receiver.stats()["quarantined"] == 2

        here.advance(HOUR + 1)  # the time bomb would go off now
        assert receiver.merge(sender.export()) == set()
        assert receiver.exists("chat") is False
        assert len(receiver.quarantined("chat")) == 2


def test_accept_writes_the_value_again_stamped_now_and_records_who() -> None:
    here, ahead = FakeClock(START), FakeClock(START + HOUR)
    store = MemoryStore()
    with Rollout(store, clock=here) as receiver, Rollout(clock=ahead) as sender:
        sender.activate_user("chat", 42)
        receiver.merge(sender.export())
        with receiver.with_context(user="alice", reason="clock fixed"):
            assert receiver.accept_quarantined("chat") == 2
        assert receiver.user_in_active_users("chat", 42)
        assert receiver.quarantined() == []
        assert max(_walls(receiver)) == here.now_ms  # stamped now, not an hour ahead
        event = receiver.history("chat")[0]
        assert (event.action, event.actor, event.reason) == (
            "quarantine_accept",
            "alice",
            "clock fixed",
        )
        assert receiver.stats()["quarantine_accepted"] == 2
        # Still refused if offered again later: it was judged once.
        here.advance(2 * HOUR)
        receiver.merge(sender.export())
        assert {r.ts.wall for r in store.registers("chat").values()} == {START}


def test_drop_forgets_the_registers_and_records_it() -> None:
    here, ahead = FakeClock(START), FakeClock(START + HOUR)
    with Rollout(clock=here) as receiver, Rollout(clock=ahead) as sender:
        sender.activate("chat")
        sender.activate_user("other", 1)
        receiver.merge(sender.export())
        assert receiver.drop_quarantined("chat", "percentage") == 1
        assert {e.key for e in receiver.quarantined("chat")} == {"exists"}
        assert receiver.drop_quarantined("chat") == 1
        assert receiver.exists("chat") is False
        assert [e.action for e in receiver.history("chat")] == ["quarantine_drop"] * 2
        assert {e.flag for e in receiver.quarantined()} == {"other"}
        with pytest.raises(ValueError, match="nothing is quarantined for flag 'chat'"):
            receiver.drop_quarantined("chat")
        with pytest.raises(ValueError, match="key must be"):
            receiver.accept_quarantined("other", "")


def test_a_later_local_write_to_the_key_wins_over_the_held_register() -> None:
    clock = FakeClock(START + HOUR)
    path_store = MemoryStore()
    with Rollout(path_store, clock=clock) as poisoned:
        poisoned.activate_percentage("chat", 10)
    clock.set(START)
    with Rollout(path_store, clock=clock) as flags:
        assert {e.key for e in flags.quarantined()} == {"exists", "percentage"}
        flags.activate_percentage("chat", 50)
        assert flags.get("chat").percentage == 50
        assert flags.quarantined() == []  # both rewritten (a write sets exists too)
        assert flags.stats()["quarantine_superseded"] == 2
    with Rollout(path_store, clock=clock) as again:  # and the store kept the new write
        assert again.get("chat").percentage == 50
        assert again.quarantined() == []


def test_loading_a_poisoned_file_never_moves_the_clock_ahead(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    clock = FakeClock(START + HOUR)
    with Rollout(f"sqlite:///{path}", clock=clock) as ahead:
        ahead.activate_user("chat", 1)
    clock.set(START)
    with Rollout(f"sqlite:///{path}", clock=clock) as flags:
        assert flags.exists("chat") is False
        assert {(e.key, e.origin) for e in flags.quarantined()} == {
            ("exists", "store"),
            ("user:1", "store"),
        }
        flags.activate_user("other", 2)
        assert max(_walls(flags)) == START  # stamped now, not +1 h
        assert flags.accept_quarantined("chat", "user:1") == 1
        assert flags.get("chat").users == {"1"}
        assert flags.quarantined() == []  # exists was rewritten by the accept too
    with Rollout(f"sqlite:///{path}", clock=clock) as reopened:
        assert reopened.quarantined() == []
        assert reopened.get("chat").users == {"1"}
        assert max(_walls(reopened)) == START


def test_a_wall_clock_stepping_back_moves_its_future_writes_to_the_quarantine() -> None:
    clock = FakeClock(START + HOUR)
    store = MemoryStore()
    with Rollout(store, clock=clock) as flags:
        flags.activate("chat")
        clock.set(START)  # NTP steps the clock back an hour
        flags.activate("beta")  # detected on write, before stamping
        assert max(_walls(flags)) == START
        assert flags.exists("chat") is False
        assert {(e.flag, e.key, e.origin) for e in flags.quarantined()} == {
            ("chat", "exists", "own clock"),
            ("chat", "percentage", "own clock"),
        }
        assert flags.stats()["clock_steps_back"] == 1
        # Out of the store too: nothing stamped above the re-based clock is left on this node.
        assert max(r.ts.wall for regs in store.load().values() for r in regs.values()) == START


def test_a_step_back_within_max_offset_changes_nothing() -> None:
    clock = FakeClock(START)
    with Rollout(clock=clock) as flags:
        flags.activate("chat")
        clock.advance(-20_000)  # less than max_offset (30 s)
        flags.deactivate("chat")
        assert flags.active("chat") is False
        assert flags.quarantined() == []
        assert flags.stats()["clock_steps_back"] == 0


def test_the_quarantine_is_bounded_and_counts_what_it_could_not_hold() -> None:
    quarantine = Quarantine(limit=3)
    ts = Timestamp(START + HOUR, 0, 9)
    refused = {"f": {f"user:{i}": Register(ts, True) for i in range(5)}}
    assert quarantine.hold(refused, "peer", START) == 3
    assert len(quarantine) == 3
    assert quarantine.overflow == 2
    # Offered again: the held ones are known, the others still do not fit.
    assert quarantine.hold(refused, "peer", START) == 0
    assert len(quarantine) == 3


def test_rollout_stats_show_the_quarantine_overflow() -> None:
    here, ahead = FakeClock(START), FakeClock(START + HOUR)
    with Rollout(clock=here) as receiver, Rollout(clock=ahead) as sender:
        sender.activate_users("chat", range(QUARANTINE_LIMIT + 5))
        receiver.merge(sender.export())
        stats = receiver.stats()
        # exists + the users + one history event were refused; the limit were held.
        assert stats["registers_rejected"] == QUARANTINE_LIMIT + 7
        assert stats["quarantine_overflow"] == 7
        assert stats["quarantined"] == len(receiver.quarantined()) <= QUARANTINE_LIMIT
        assert receiver.exists("chat") is False


def test_a_step_back_removes_only_this_nodes_own_registers_from_a_shared_store() -> None:
    store = MemoryStore()
    with Rollout(store, clock=FakeClock(START + HOUR)) as other:
        other.activate("theirs")  # another process on the store, its clock an hour ahead too
    clock = FakeClock(START + HOUR)
    with Rollout(store, clock=clock) as flags:
        flags.activate("mine")
        assert flags.exists("theirs")
        clock.set(START)
        flags.activate("after")
        assert {e.flag for e in flags.quarantined()} == {"theirs", "mine"}
        # Theirs stay in the store (not this node's to delete), held again at the next load;
        # its own are gone from it.
        assert {r.ts.wall for r in store.registers("theirs").values()} == {START + HOUR}
        assert store.registers("mine") == {}
    with Rollout(store, clock=FakeClock(START)) as restarted:
        # Its own held registers are kept by the store's quarantine, not lost at the restart.
        assert {e.flag for e in restarted.quarantined()} == {"theirs", "mine"}
        assert restarted.exists("after")


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # which user key
            st.integers(-2 * HOUR, 2 * HOUR),  # stamped this far from the receiver's clock
            st.integers(0, HOUR),  # then the receiver's clock moves this far
        ),
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_no_register_is_ever_applied_that_was_too_far_ahead_when_it_first_came(
    steps: list[tuple[int, int, int]],
) -> None:
    clock = FakeClock(START)
    first_seen: dict[tuple[str, int, int], int] = {}
    with Rollout(clock=clock) as receiver:
        for node, (user, offset, advance) in enumerate(steps, start=1):
            ts = Timestamp(clock.now_ms + offset, 0, node)
            first_seen.setdefault((f"user:{user}", ts.wall, node), clock.now_ms)
            receiver.merge(encode({"chat": {f"user:{user}": Register(ts, True)}}))
            # Offer everything seen so far again, as anti-entropy would.
            for (key, wall, origin), _ in list(first_seen.items()):
                receiver.merge(encode({"chat": {key: Register(Timestamp(wall, 0, origin), True)}}))
            clock.advance(advance)
            assert receiver._pipeline.clock.last().wall <= clock.now_ms + 30_000
        held = json.loads(receiver.export())["flags"].get("chat", {})
        for key, (wall, _counter, node) in ((k, r[:3]) for k, r in held.items()):
            if key.startswith("user:"):
                assert wall - first_seen[(key, wall, node)] <= 30_000
