"""The history (audit log): every change records who, what, when and where."""

from __future__ import annotations

import datetime
import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout import HistoryEvent, Rollout
from rollout.testing import FakeClock


def test_each_write_records_what_it_changed_before_and_after(flags: Rollout) -> None:
    flags.activate_percentage("chat", 20)
    flags.activate_percentage("chat", 50)
    flags.activate_user("chat", 42)
    flags.set_feature_data("chat", {"colour": "blue"})
    flags.deactivate("chat")
    newest, data, user, fifty, twenty = flags.history("chat")
    assert (twenty.action, twenty.before, twenty.after) == (
        "activate_percentage",
        {"exists": False, "percentage": 0.0},
        {"exists": True, "percentage": 20.0},
    )
    assert (fifty.before, fifty.after) == ({"percentage": 20.0}, {"percentage": 50.0})
    assert (user.action, user.before, user.after) == (
        "activate_user",
        {"user:42": False},
        {"user:42": True},
    )
    assert (data.before, data.after) == ({"data:colour": None}, {"data:colour": "blue"})
    assert newest.action == "deactivate"
    assert newest.before == {"percentage": 50.0, "users": ["42"]}
    assert newest.after == {"percentage": 0.0, "users": []}


def test_an_event_says_when_and_where(clock: FakeClock) -> None:
    with Rollout(clock=clock, node_name="web-1") as flags:
        flags.activate("chat")
        (event,) = flags.history("chat")
    assert event.node == "web-1"
    assert event.at == datetime.datetime.fromtimestamp(clock() / 1000, datetime.UTC)
    assert event.flag == "chat"
    assert event.to_dict()["at"].endswith("Z")
    with Rollout() as flags:
        flags.activate("chat")
        assert flags.history("chat")[0].node == f"{socket.gethostname()}:{os.getpid()}"


def test_with_context_names_who_and_why_and_nests(flags: Rollout) -> None:
    flags.activate("a")
    with flags.with_context(user="alice"):
        flags.activate("b")
        with flags.with_context(reason="incident 7"):
            flags.deactivate("b")
        with flags.with_context(user="bob"):
            flags.activate("c")
    assert flags.history("a")[0].actor is None
    deactivated, activated = flags.history("b")
    assert (activated.actor, activated.reason) == ("alice", None)
    assert (deactivated.actor, deactivated.reason) == ("alice", "incident 7")
    assert flags.history("c")[0].actor == "bob"


def test_the_context_of_one_thread_does_not_leak_into_another(flags: Rollout) -> None:
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        inside.wait()
        flags.activate("other")
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with flags.with_context(user="alice"):
        inside.set()
        done.wait()
    thread.join()
    assert flags.history("other")[0].actor is None


def test_history_outlives_a_delete_and_says_who_deleted(flags: Rollout) -> None:
    flags.activate("chat")
    with flags.with_context(user="carol"):
        flags.delete("chat")
    assert not flags.exists("chat")
    deleted, activated = flags.history("chat")
    assert (deleted.action, deleted.actor) == ("delete", "carol")
    assert deleted.before["exists"] is True
    assert deleted.after["exists"] is False
    assert activated.action == "activate"


def test_history_is_bounded_and_newest_first(clock: FakeClock) -> None:
    with Rollout(clock=clock, history_limit=5) as flags:
        for pct in range(1, 11):
            flags.activate_percentage("chat", pct)
        events = flags.history("chat")
        assert [e.after["percentage"] for e in events] == [10.0, 9.0, 8.0, 7.0, 6.0]
        assert len(flags.history("chat", limit=2)) == 2
    with Rollout(clock=clock, history_limit=0) as flags:
        flags.activate("chat")
        assert flags.history("chat") == []
        assert flags.active("chat")


def test_a_big_user_list_is_summarised_not_copied(flags: Rollout) -> None:
    flags.activate_users("chat", range(10))
    flags.activate_users("chat", range(5, 1005))
    (big, _small) = flags.history("chat")
    assert big.after == {"user:*": "+995 -0 (5 unchanged)"}
    flags.deactivate("chat")
    assert flags.history("chat")[0].before["users"] == "1005 ids"


def test_history_is_stored_and_replicated(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url, clock=clock, node_name="a") as flags, flags.with_context(user="alice"):
        flags.activate("chat")
    with Rollout(url, clock=clock) as flags:
        (event,) = flags.history("chat")
        assert (event.action, event.actor, event.node) == ("activate", "alice", "a")
        other = Rollout(clock=clock)
        other.merge(flags.export())
        assert other.history("chat") == flags.history("chat")


events = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 40)), max_size=40)


@given(events)
def test_replicas_keep_the_same_newest_events_whatever_the_order(
    writes: list[tuple[int, int]],
) -> None:
    """Merging histories is "newest N of the union": order and repetition do not matter."""
    clock = FakeClock()
    writers = [Rollout(clock=clock, history_limit=6) for _ in range(4)]
    for writer, pct in writes:
        clock.advance(1)
        writers[writer].activate_percentage("f", pct)
    blobs = [w.export() for w in writers]
    forward, backward = Rollout(history_limit=6), Rollout(history_limit=6)
    for blob in blobs:
        forward.merge(blob)
    for blob in [*reversed(blobs), *blobs]:
        backward.merge(blob)
    assert forward.history("f") == backward.history("f")
    everything = sorted(
        (event for w in writers for event in w.history("f")),
        key=lambda e: e.timestamp,
        reverse=True,
    )
    assert [e.timestamp for e in forward.history("f")] == [e.timestamp for e in everything[:6]]


def test_bad_arguments_are_refused_by_name(flags: Rollout) -> None:
    with pytest.raises(ValueError, match="history_limit must be an int >= 0, got -1"):
        Rollout(history_limit=-1)
    with pytest.raises(ValueError, match="node_name must be a non-empty str"):
        Rollout(node_name="")
    with pytest.raises(TypeError, match="user must be a str or None, got 7"):
        flags.with_context(user=7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be an int >= 0 or None, got -2"):
        flags.history("chat", limit=-2)
    assert isinstance(HistoryEvent, type)
