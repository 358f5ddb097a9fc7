"""History records what changed, not what was asked: members whose value stays are left out,
and a write that changes nothing records no event (but is still stamped, stored and wins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.testing import FakeClock


@pytest.fixture(params=["memory", "sqlite"])
def flags(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Rollout]:
    store = None if request.param == "memory" else f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(store, clock=clock) as opened:
        yield opened


def actions(flags: Rollout, name: str = "chat") -> list[str]:
    return [event.action for event in flags.history(name)]


def test_a_user_added_twice_is_recorded_once(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    flags.activate_user("chat", 42)
    flags.activate_users("chat", [42, 7])
    newest, first = flags.history("chat")
    assert (newest.before, newest.after) == ({"user:7": False}, {"user:7": True})
    assert first.after == {"exists": True, "user:42": True}


def test_removing_what_was_never_there_records_nothing(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    flags.deactivate_group("chat", "admins")
    flags.deactivate_user("chat", 7)
    flags.include_users("chat", [1, 2])
    flags.deactivate_percentage("chat")
    flags.deactivate_percentage_of_time("chat")
    flags.clear_feature_data("chat")
    assert actions(flags) == ["activate_user"]


def test_a_write_names_only_the_members_it_changes(flags: Rollout) -> None:
    flags.activate_group("chat", "admins")
    flags.exclude_users("chat", [1, 2])
    flags.include_users("chat", [2, 3])
    flags.set_feature_data("chat", {"owner": "web", "n": 1})
    flags.set_feature_data("chat", {"owner": "web", "n": 2})
    flags.set_feature_data("chat", {"owner": "web", "n": 2})
    flags.set_users("chat", [5])
    flags.set_users("chat", [5])
    users, data, _, include, *_ = flags.history("chat")
    assert (users.before, users.after) == ({"user:5": False}, {"user:5": True})
    assert (data.before, data.after) == ({"data:n": 1}, {"data:n": 2})
    assert (include.before, include.after) == ({"exclude:2": True}, {"exclude:2": False})
    assert actions(flags) == [
        "set_users",
        "set_feature_data",
        "set_feature_data",
        "include_users",
        "exclude_users",
        "activate_group",
    ]


def test_same_scalars_and_same_data_record_nothing(flags: Rollout) -> None:
    flags.activate_percentage("chat", 20)
    flags.activate_percentage("chat", 20)
    flags.activate_percentage_of_time("chat", 0)
    flags.replace_feature_data("chat", {"a": 1})
    flags.replace_feature_data("chat", {"a": 1})
    flags.activate("on")
    flags.activate("on")
    flags.set("on", True)
    assert actions(flags) == ["replace_feature_data", "activate_percentage"]
    assert actions(flags, "on") == ["activate"]


def test_deactivating_a_flag_that_is_off_records_nothing(flags: Rollout) -> None:
    flags.set("chat", False)
    flags.deactivate("chat")
    flags.set("chat", False)
    assert actions(flags) == ["deactivate"]  # the first one created the flag


def test_a_write_that_changes_nothing_still_wins_over_an_older_concurrent_removal(
    flags: Rollout, clock: FakeClock
) -> None:
    flags.activate_user("chat", 42)
    with Rollout(clock=FakeClock(clock() + 5)) as other:
        other.merge(flags.export())
        other.deactivate_user("chat", 42)  # made before the re-add below, not yet seen here
        removal = other.export()
    clock.advance(10)
    flags.activate_user("chat", 42)  # nothing changes here, so no event, but a fresh stamp
    assert actions(flags) == ["activate_user"]
    flags.merge(removal)
    assert flags.user_in_active_users("chat", 42) is True  # the later re-add wins
    assert actions(flags) == ["deactivate_user", "activate_user"]


def test_ten_thousand_users_pasted_again_are_summarised_by_what_changed(flags: Rollout) -> None:
    flags.activate_users("chat", range(10_000))
    flags.activate_users("chat", range(10_000))  # all listed already: no event
    flags.activate_users("chat", range(3, 10_030))  # 30 new ones
    flags.deactivate_users("chat", range(9_000, 20_000))  # 1,030 listed, 9,970 never were
    removed, added, first = flags.history("chat")
    assert first.after == {"exists": True, "user:*": "+10000 -0 (0 unchanged)"}
    assert added.before == {"user:*": "10027 named"}
    assert added.after == {"user:*": "+30 -0 (9997 unchanged)"}
    assert removed.before == {"user:*": "11000 named"}
    assert removed.after == {"user:*": "+0 -1030 (9970 unchanged)"}
    flags.activate_users("chat", range(5_000, 9_003))  # three of 4,003 new: named
    assert flags.history("chat")[0].after == {f"user:{i}": True for i in (9_000, 9_001, 9_002)}


def test_a_few_changed_among_many_named_are_named_one_by_one(flags: Rollout) -> None:
    flags.activate_users("chat", range(100))
    flags.activate_users("chat", range(102))  # 102 named, two of them new
    assert flags.history("chat")[0].after == {"user:100": True, "user:101": True}
