"""The public API of Rollout, method by method, as a user of the library sees it."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import pytest

import rollout
from rollout import ClosedError, Feature, Rollout, UnknownFlagError
from rollout.testing import FakeClock

CHECKS = 20_000


@dataclass(frozen=True)
class User:
    id: object
    admin: bool = False


@dataclass(frozen=True)
class Account:
    uuid: str


class Flag(str, Enum):  # noqa: UP042  # the pre-3.11 spelling must work too
    CHAT = "chat"


class StrFlag(StrEnum):
    CHAT = "chat"


class PlainFlag(Enum):
    CHAT = "chat"


def share_on(flags: Rollout, name: str, user: object = None, checks: int = CHECKS) -> float:
    """The percentage of ``checks`` calls to ``active`` that said yes."""
    return 100.0 * sum(flags.active(name, user) for _ in range(checks)) / checks


def let_in(flags: Rollout, name: str, users: range = range(1, 2001)) -> set[int]:
    return {user for user in users if flags.active(name, user)}


# Checks ---------------------------------------------------------------------------------------


def test_an_unknown_flag_is_off_for_everybody(flags: Rollout) -> None:
    assert flags.active("nope") is False
    assert flags.active("nope", 1) is False
    assert flags.active("nope", User(1)) is False
    assert flags.inactive("nope") is True
    assert flags.inactive("nope", "alice") is True
    assert flags.features() == []


def test_activate_turns_the_flag_on_for_everybody(flags: Rollout) -> None:
    flags.activate("chat")
    assert flags.active("chat") is True
    for user in (1, "alice", User(7), User("bob"), 10**30):
        assert flags.active("chat", user) is True
        assert flags.inactive("chat", user) is False
    assert flags.get("chat").percentage == 100.0


def test_inactive_is_always_the_opposite_of_active(flags: Rollout) -> None:
    flags.activate_percentage("chat", 50)
    flags.activate_user("chat", "listed")
    for user in ["listed", *range(1, 200)]:
        assert flags.inactive("chat", user) is (not flags.active("chat", user))
    assert flags.inactive("chat") is True


@pytest.mark.parametrize(
    ("pct", "expected"), [(0, False), (50, False), (99.99, False), (100, True)]
)
def test_a_check_without_a_user_is_true_only_at_100_percent(
    flags: Rollout, pct: float, expected: bool
) -> None:
    flags.activate_percentage("chat", pct)
    assert flags.active("chat") is expected
    assert flags.active("chat", None) is expected


def test_a_check_without_a_user_ignores_listed_users_and_groups(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.activate_group("chat", "all")
    assert flags.active("chat", 1) is True
    assert flags.active("chat") is False


def test_user_in_active_users_looks_only_at_the_list(flags: Rollout) -> None:
    flags.activate_group("chat", "all")
    flags.activate_percentage("chat", 100)
    assert flags.user_in_active_users("chat", 1) is False
    flags.activate_user("chat", 1)
    assert flags.user_in_active_users("chat", 1) is True
    assert flags.user_in_active_users("chat", "1") is True
    assert flags.user_in_active_users("chat", User(1)) is True
    assert flags.user_in_active_users("chat", 2) is False
    assert flags.user_in_active_users("unknown", 1) is False


def test_active_in_group(flags: Rollout) -> None:
    flags.define_group("admins", lambda user: user.admin)
    assert flags.active_in_group("all", User(1)) is True
    assert flags.active_in_group("admins", User(1, admin=True)) is True
    assert flags.active_in_group("admins", User(2)) is False
    assert flags.active_in_group("undefined", User(1, admin=True)) is False


# Whole flag -----------------------------------------------------------------------------------


def test_activate_keeps_users_groups_and_exclusions(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.activate_group("chat", "beta")
    flags.exclude_user("chat", 2)
    flags.activate("chat")
    feature = flags.get("chat")
    assert feature.percentage == 100.0
    assert feature.users == {"1"}
    assert feature.groups == {"beta"}
    assert feature.excluded_users == {"2"}
    assert flags.active("chat", 2) is False


def test_deactivate_clears_all_targeting_but_keeps_the_flag_and_its_data(flags: Rollout) -> None:
    flags.activate("chat")
    flags.activate_percentage_of_time("chat", 50)
    flags.activate_users("chat", [1, 2])
    flags.activate_group("chat", "all")
    flags.exclude_user("chat", 3)
    flags.set_feature_data("chat", {"owner": "web"})
    flags.deactivate("chat")
    feature = flags.get("chat")
    assert feature.percentage == 0.0
    assert feature.percentage_of_time == 0.0
    assert feature.users == frozenset()
    assert feature.groups == frozenset()
    assert feature.excluded_users == frozenset()
    assert dict(feature.data) == {"owner": "web"}
    assert flags.features() == ["chat"]
    assert flags.exists("chat") is True
    assert not any(flags.active("chat", user) for user in range(1, 500))
    assert flags.active("chat") is False


def test_targeting_added_after_deactivate_counts_and_earlier_targeting_does_not(
    flags: Rollout, clock: FakeClock
) -> None:
    flags.activate_user("chat", 1)
    flags.deactivate("chat")  # the clock did not move: order still decides
    flags.activate_user("chat", 2)
    assert flags.get("chat").users == {"2"}
    assert flags.active("chat", 1) is False
    assert flags.active("chat", 2) is True


def test_set_false_of_an_unknown_flag_creates_it_off(flags: Rollout) -> None:
    # Declarative (configuration as code): "signup is off" holds afterwards, flag and all.
    flags.set("signup", False)
    assert flags.features() == ["signup"]
    assert flags.active("signup", 1) is False
    assert [e.action for e in flags.history("signup")] == ["deactivate"]


def test_set_true_activates_and_false_deactivates(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.set("chat", True)
    assert flags.active("chat") is True
    assert flags.get("chat").percentage == 100.0
    flags.set("chat", False)
    assert flags.active("chat") is False
    assert flags.active("chat", 1) is False
    assert flags.get("chat").users == frozenset()
    assert flags.features() == ["chat"]


def test_delete_forgets_the_flag_and_its_data(flags: Rollout) -> None:
    flags.activate("chat")
    flags.activate_user("chat", 1)
    flags.set_feature_data("chat", {"owner": "web"})
    flags.activate("other")
    flags.delete("chat")
    assert flags.features() == ["other"]
    assert flags.exists("chat") is False
    assert flags.active("chat") is False
    assert flags.active("chat", 1) is False
    assert flags.get("chat") == Feature("chat")
    assert "chat" not in flags.feature_states()


def test_a_deleted_flag_comes_back_clean(flags: Rollout) -> None:
    flags.activate_users("chat", [1, 2])
    flags.set_feature_data("chat", {"owner": "web"})
    flags.delete("chat")
    flags.activate_user("chat", 3)
    feature = flags.get("chat")
    assert feature.users == {"3"}
    assert dict(feature.data) == {}
    assert feature.percentage == 0.0
    assert flags.features() == ["chat"]


def test_delete_of_an_unknown_flag_is_an_error_that_writes_nothing(flags: Rollout) -> None:
    with pytest.raises(UnknownFlagError, match=r"^no flag named 'ghost' \(nothing was changed\)$"):
        flags.delete("ghost")
    assert flags.features() == []
    assert flags.exists("ghost") is False
    assert flags.history("ghost") == []


def test_clear_deletes_every_flag(flags: Rollout) -> None:
    for name in ("a", "b", "c"):
        flags.activate(name)
        flags.set_feature_data(name, {"k": name})
    flags.clear()
    assert flags.features() == []
    assert flags.feature_states() == {}
    for name in ("a", "b", "c"):
        assert flags.active(name) is False
        assert flags.exists(name) is False
        assert dict(flags.get(name).data) == {}
    flags.activate("a")
    assert flags.features() == ["a"]


def test_clear_of_nothing_is_harmless(flags: Rollout) -> None:
    flags.clear()
    assert flags.features() == []


# Users ----------------------------------------------------------------------------------------


def test_activate_user_and_deactivate_user(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.activate_user("chat", "alice")
    flags.activate_user("chat", User("bob"))
    assert flags.get("chat").users == {"1", "alice", "bob"}
    assert flags.active("chat", 1) is True
    assert flags.active("chat", User("alice")) is True
    assert flags.active("chat", "bob") is True
    assert flags.active("chat", 2) is False
    assert flags.features() == ["chat"]
    flags.deactivate_user("chat", "alice")
    assert flags.get("chat").users == {"1", "bob"}
    assert flags.active("chat", "alice") is False
    flags.deactivate_user("chat", "never-listed")
    assert flags.get("chat").users == {"1", "bob"}


def test_activate_users_and_deactivate_users_take_any_iterable(flags: Rollout) -> None:
    flags.activate_users("chat", (n for n in range(5)))
    assert flags.get("chat").users == {"0", "1", "2", "3", "4"}
    flags.activate_users("chat", {"x", User("y")})
    assert flags.get("chat").users == {"0", "1", "2", "3", "4", "x", "y"}
    flags.deactivate_users("chat", iter([0, "1", User(2), "x"]))
    assert flags.get("chat").users == {"3", "4", "y"}
    assert flags.active("chat", 3) is True
    assert flags.active("chat", 0) is False


def test_activating_a_user_twice_lists_it_once(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.activate_users("chat", [1, "1", User(1)])
    assert flags.get("chat").users == {"1"}
    flags.deactivate_user("chat", 1)
    assert flags.get("chat").users == frozenset()


def test_set_users_makes_the_list_exactly_these(flags: Rollout) -> None:
    flags.activate_users("chat", [1, 2, 3])
    flags.set_users("chat", [3, 4, User(5)])
    assert flags.get("chat").users == {"3", "4", "5"}
    assert flags.active("chat", 1) is False
    assert flags.active("chat", 4) is True
    flags.set_users("chat", iter([]))
    assert flags.get("chat").users == frozenset()
    flags.set_users("fresh", ["a"])
    assert flags.get("fresh").users == {"a"}


def test_42_and_the_string_42_are_one_user(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    assert flags.active("chat", "42") is True
    assert flags.active("chat", User("42")) is True
    assert flags.active("chat", User(42)) is True
    flags.activate_user("chat", "42")
    assert flags.get("chat").users == {"42"}
    flags.deactivate_user("chat", "42")
    assert flags.active("chat", 42) is False
    flags.exclude_user("chat", User(42))
    assert flags.get("chat").excluded_users == {"42"}


def test_users_are_identified_by_the_id_attribute_by_default(flags: Rollout) -> None:
    flags.activate_user("chat", User(7))
    assert flags.active("chat", 7) is True
    assert flags.active("chat", User(7, admin=True)) is True


def test_id_user_by_an_attribute_name() -> None:
    with Rollout(id_user_by="uuid") as flags:
        flags.activate_user("chat", Account("abc"))
        assert flags.get("chat").users == {"abc"}
        assert flags.active("chat", Account("abc")) is True
        assert flags.active("chat", "abc") is True
        assert flags.active("chat", Account("xyz")) is False


def test_id_user_by_a_callable() -> None:
    with Rollout(id_user_by=lambda user: user["key"]) as flags:
        flags.activate_user("chat", {"key": 9})
        assert flags.get("chat").users == {"9"}
        assert flags.active("chat", {"key": 9}) is True
        assert flags.active("chat", 9) is True
        assert flags.active("chat", {"key": 10}) is False


def test_an_excluded_user_is_never_on(flags: Rollout) -> None:
    flags.define_group("everyone", lambda user: True)
    flags.activate("chat")
    flags.activate_percentage_of_time("chat", 100)
    flags.activate_user("chat", 1)
    flags.activate_group("chat", "all")
    flags.activate_group("chat", "everyone")
    flags.exclude_user("chat", 1)
    assert flags.active("chat", 1) is False
    assert flags.active("chat", "1") is False
    assert flags.active("chat", User(1)) is False
    assert flags.active("chat", 2) is True
    assert flags.active("chat") is True
    assert "1" in flags.get("chat").users
    assert flags.get("chat").excluded_users == {"1"}
    assert flags.active_features(1) == []
    assert flags.feature_states(1) == {"chat": False}


def test_include_user_undoes_exclude_user(flags: Rollout) -> None:
    flags.activate("chat")
    flags.exclude_user("chat", "alice")
    assert flags.active("chat", "alice") is False
    flags.include_user("chat", "alice")
    assert flags.active("chat", "alice") is True
    assert flags.get("chat").excluded_users == frozenset()


def test_exclusions_are_cleared_by_deactivate(flags: Rollout) -> None:
    flags.exclude_user("chat", 1)
    flags.deactivate("chat")
    flags.activate("chat")
    assert flags.active("chat", 1) is True


# Groups ---------------------------------------------------------------------------------------


def test_a_defined_group_gets_the_user_object(flags: Rollout) -> None:
    seen: list[object] = []

    def admins(user: Any) -> bool:
        seen.append(user)
        return bool(user.admin)

    flags.define_group("admins", admins)
    flags.activate_group("chat", "admins")
    assert flags.active("chat", User(1, admin=True)) is True
    assert flags.active("chat", User(2)) is False
    assert seen == [User(1, admin=True), User(2)]
    assert flags.get("chat").groups == {"admins"}


def test_define_group_is_a_decorator_that_returns_the_function(flags: Rollout) -> None:
    # define_group() is typed as returning Any, so strict mypy calls this decorator untyped.
    @flags.define_group("staff")
    def staff(user: Any) -> bool:
        return str(user).startswith("s")

    assert staff("sam") is True  # still the plain function
    flags.activate_group("chat", "staff")
    assert flags.active("chat", "sam") is True
    assert flags.active("chat", "tom") is False
    assert "staff" in flags.groups()


def test_the_all_group_always_exists_and_lets_every_user_in(flags: Rollout) -> None:
    assert "all" in flags.groups()
    flags.activate_group("chat", "all")
    assert all(flags.active("chat", user) for user in (1, "x", User(3)))
    assert flags.active("chat") is False  # no user: only a percentage of 100 says yes


def test_a_listed_but_undefined_group_says_no_until_defined(flags: Rollout) -> None:
    flags.activate_group("chat", "beta")
    assert flags.active("chat", 1) is False
    flags.define_group("beta", lambda user: user == 1)
    assert flags.active("chat", 1) is True
    assert flags.active("chat", 2) is False


def test_redefining_a_group_replaces_its_predicate(flags: Rollout) -> None:
    flags.define_group("g", lambda user: True)
    flags.activate_group("chat", "g")
    assert flags.active("chat", 1) is True
    flags.define_group("g", lambda user: False)
    assert flags.active("chat", 1) is False


def test_deactivate_group(flags: Rollout) -> None:
    flags.define_group("g", lambda user: True)
    flags.activate_group("chat", "g")
    flags.activate_group("chat", "all")
    flags.deactivate_group("chat", "all")
    assert flags.get("chat").groups == {"g"}
    flags.deactivate_group("chat", "g")
    assert flags.get("chat").groups == frozenset()
    assert flags.active("chat", 1) is False
    assert flags.features() == ["chat"]


def test_a_raising_predicate_says_no_is_logged_and_counted(
    flags: Rollout, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(user: object) -> bool:
        raise RuntimeError("database down")

    flags.define_group("broken", broken)
    flags.define_group("fine", lambda user: user == 2)
    flags.activate_group("chat", "broken")
    flags.activate_group("chat", "fine")
    errors = flags.stats()["group_errors"]
    with caplog.at_level(logging.ERROR, logger="rollout"):
        assert flags.active("chat", 1) is False
        assert flags.active("chat", 2) is True  # the other group still answers
        assert flags.active_in_group("broken", 1) is False
    assert flags.stats()["group_errors"] >= errors + 2
    records = [r for r in caplog.records if r.name == "rollout"]
    assert records
    assert any("broken" in r.getMessage() for r in records)


# Percentages ----------------------------------------------------------------------------------


def test_a_percentage_of_users_is_stable_per_user(flags: Rollout) -> None:
    flags.activate_percentage("chat", 20)
    first = let_in(flags, "chat", range(1, 10_001))
    assert 17 <= len(first) / 100 <= 23
    assert let_in(flags, "chat", range(1, 10_001)) == first
    with Rollout() as elsewhere:  # another process puts the same users in
        elsewhere.activate_percentage("chat", 20)
        assert let_in(elsewhere, "chat", range(1, 10_001)) == first
    assert {str(u) for u in first} == {
        u for u in map(str, range(1, 10_001)) if flags.active("chat", u)
    }


def test_raising_a_percentage_keeps_the_users_already_in(flags: Rollout) -> None:
    flags.activate_percentage("chat", 10)
    ten = let_in(flags, "chat")
    flags.activate_percentage("chat", 30)
    thirty = let_in(flags, "chat")
    assert ten < thirty
    assert flags.get("chat").percentage == 30.0


def test_fractional_percentages(flags: Rollout) -> None:
    flags.activate_percentage("chat", 0.5)
    assert flags.get("chat").percentage == 0.5
    assert 0 < len(let_in(flags, "chat", range(1, 20_001))) < 200


def test_percentage_zero_and_hundred(flags: Rollout) -> None:
    flags.activate_percentage("chat", 0)
    assert let_in(flags, "chat") == set()
    assert flags.features() == ["chat"]
    flags.activate_percentage("chat", 100)
    assert let_in(flags, "chat") == set(range(1, 2001))


def test_deactivate_percentage_keeps_listed_users(flags: Rollout) -> None:
    flags.activate_percentage("chat", 50)
    flags.activate_user("chat", "vip")
    flags.deactivate_percentage("chat")
    assert flags.get("chat").percentage == 0.0
    assert let_in(flags, "chat") == set()
    assert flags.active("chat", "vip") is True
    assert flags.exists("chat") is True


def test_percentage_of_time_without_a_user(flags: Rollout) -> None:
    flags.activate_percentage_of_time("chat", 25)
    assert flags.get("chat").percentage_of_time == 25.0
    assert 22 <= share_on(flags, "chat") <= 28


def test_percentage_of_time_with_a_user(flags: Rollout) -> None:
    flags.activate_percentage_of_time("chat", 60)
    assert 56 <= share_on(flags, "chat", "alice") <= 64
    flags.exclude_user("chat", "alice")
    assert share_on(flags, "chat", "alice", 2000) == 0


def test_percentage_of_time_is_drawn_on_every_check_even_for_one_user(flags: Rollout) -> None:
    flags.activate_percentage_of_time("chat", 50)
    answers = {flags.active("chat", 1) for _ in range(500)}
    assert answers == {True, False}


def test_percentage_of_time_0_and_100(flags: Rollout) -> None:
    flags.activate_percentage_of_time("chat", 100)
    assert share_on(flags, "chat", checks=1000) == 100
    assert share_on(flags, "chat", 5, checks=1000) == 100
    flags.activate_percentage_of_time("chat", 0)
    assert share_on(flags, "chat", checks=1000) == 0
    assert share_on(flags, "chat", 5, checks=1000) == 0


def test_deactivate_percentage_of_time_leaves_the_percentage_of_users(flags: Rollout) -> None:
    flags.activate_percentage("chat", 20)
    flags.activate_percentage_of_time("chat", 50)
    flags.deactivate_percentage_of_time("chat")
    feature = flags.get("chat")
    assert feature.percentage_of_time == 0.0
    assert feature.percentage == 20.0
    assert share_on(flags, "chat", checks=1000) == 0
    assert flags.active("chat", 2) is True  # id 2 is in the 20% bucket (Ruby golden)
    assert share_on(flags, "chat", 1, checks=1000) == 0  # id 1 is not


def test_deactivate_clears_percentage_of_time(flags: Rollout) -> None:
    flags.activate_percentage_of_time("chat", 100)
    flags.deactivate("chat")
    assert share_on(flags, "chat", checks=1000) == 0


# Data -----------------------------------------------------------------------------------------


def test_set_feature_data_merges_keys(flags: Rollout) -> None:
    flags.set_feature_data("chat", {"description": "Chat v2", "owner": "web"})
    flags.set_feature_data("chat", {"owner": "mobile", "tags": ["a", 1, None, {"x": 1.5}]})
    assert dict(flags.get("chat").data) == {
        "description": "Chat v2",
        "owner": "mobile",
        "tags": ["a", 1, None, {"x": 1.5}],
    }
    assert flags.features() == ["chat"]
    assert flags.active("chat", 1) is False  # data is not targeting


def test_clear_feature_data_removes_every_key(flags: Rollout) -> None:
    flags.set_feature_data("chat", {"a": 1, "b": 2})
    flags.activate_user("chat", 1)
    flags.clear_feature_data("chat")
    assert dict(flags.get("chat").data) == {}
    assert flags.active("chat", 1) is True
    flags.set_feature_data("chat", {"c": 3})
    assert dict(flags.get("chat").data) == {"c": 3}


def test_data_survives_deactivate_but_not_delete(flags: Rollout) -> None:
    flags.set_feature_data("chat", {"owner": "web"})
    flags.activate("chat")
    flags.deactivate("chat")
    assert dict(flags.get("chat").data) == {"owner": "web"}
    flags.delete("chat")
    assert dict(flags.get("chat").data) == {}


def test_data_is_copied_on_the_way_in(flags: Rollout) -> None:
    tags = ["a"]
    data: dict[str, Any] = {"tags": tags}
    flags.set_feature_data("chat", data)
    tags.append("b")
    data["extra"] = 1
    assert dict(flags.get("chat").data) == {"tags": ["a"]}


def test_data_read_from_a_feature_cannot_change_the_flag(flags: Rollout) -> None:
    flags.set_feature_data("chat", {"tags": ["a"], "owner": {"team": "web"}})
    before = flags.export()
    feature = flags.get("chat")
    with pytest.raises(TypeError):
        feature.data["owner"] = "someone"  # type: ignore[index]
    # Nested values must not be a back door into the replicated state either.
    with contextlib.suppress(AttributeError, TypeError):
        feature.data["tags"].append("b")
    with contextlib.suppress(AttributeError, TypeError):
        feature.data["owner"]["team"] = "evil"
    assert flags.export() == before
    assert list(flags.get("chat").data["tags"]) == ["a"]
    assert dict(flags.get("chat").data["owner"]) == {"team": "web"}


# Reading --------------------------------------------------------------------------------------


def test_get_of_an_unknown_flag_is_an_empty_feature(flags: Rollout) -> None:
    feature = flags.get("nope")
    assert isinstance(feature, Feature)
    assert feature.name == "nope"
    assert feature.percentage == 0.0
    assert feature.percentage_of_time == 0.0
    assert feature.users == frozenset()
    assert feature.excluded_users == frozenset()
    assert feature.groups == frozenset()
    assert dict(feature.data) == {}
    assert flags.features() == []  # reading creates nothing


def test_get_describes_the_flag(flags: Rollout) -> None:
    flags.activate_percentage("chat", 12.5)
    flags.activate_percentage_of_time("chat", 3)
    flags.activate_users("chat", [1, "two"])
    flags.exclude_user("chat", 3)
    flags.activate_group("chat", "admins")
    flags.set_feature_data("chat", {"owner": "web"})
    feature = flags.get("chat")
    assert feature.name == "chat"
    assert feature.percentage == 12.5
    assert feature.percentage_of_time == 3.0
    assert isinstance(feature.percentage, float)
    assert isinstance(feature.percentage_of_time, float)
    assert feature.users == frozenset({"1", "two"})
    assert feature.excluded_users == frozenset({"3"})
    assert feature.groups == frozenset({"admins"})
    for members in (feature.users, feature.excluded_users, feature.groups):
        assert isinstance(members, frozenset)
        assert all(isinstance(m, str) for m in members)
    assert dict(feature.data) == {"owner": "web"}
    assert feature.to_dict() == {
        "name": "chat",
        "percentage": 12.5,
        "percentage_of_time": 3.0,
        "users": ["1", "two"],
        "excluded_users": ["3"],
        "groups": ["admins"],
        "data": {"owner": "web"},
    }
    assert json.loads(json.dumps(feature.to_dict())) == feature.to_dict()


def test_a_feature_is_immutable(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    feature = flags.get("chat")
    for attribute in ("name", "percentage", "users", "data", "groups"):
        with pytest.raises(AttributeError):
            setattr(feature, attribute, None)
    with pytest.raises(AttributeError):
        del feature.users
    with pytest.raises(AttributeError):
        feature.users.add("2")  # type: ignore[attr-defined]
    assert flags.get("chat").users == {"1"}


def test_a_feature_is_a_snapshot_that_later_writes_do_not_change(flags: Rollout) -> None:
    flags.activate_user("chat", 1)
    flags.set_feature_data("chat", {"k": 1})
    before = flags.get("chat")
    flags.activate_user("chat", 2)
    flags.set_feature_data("chat", {"k": 2})
    flags.activate_percentage("chat", 50)
    assert before.users == {"1"}
    assert dict(before.data) == {"k": 1}
    assert before.percentage == 0.0
    assert flags.get("chat").users == {"1", "2"}
    assert flags.get("chat") != before


def test_equal_features_compare_equal(flags: Rollout) -> None:
    flags.activate_users("chat", [2, 1])
    with Rollout() as other:
        other.activate_users("chat", [1, 2])
        assert other.get("chat") == flags.get("chat")
        assert hash(other.get("chat")) == hash(flags.get("chat"))


def test_multi_get_returns_features_in_the_order_asked(flags: Rollout) -> None:
    flags.activate("a")
    flags.activate_user("b", 1)
    features = flags.multi_get("b", "missing", "a")
    assert [f.name for f in features] == ["b", "missing", "a"]
    assert features[0].users == {"1"}
    assert features[1] == Feature("missing")
    assert features[2].percentage == 100.0
    assert flags.multi_get() == []


def test_features_lists_each_flag_once_sorted(flags: Rollout) -> None:
    flags.activate("zeta")
    flags.activate("alpha")
    flags.activate("alpha")
    flags.activate_user("mid", 1)
    assert flags.features() == ["alpha", "mid", "zeta"]


def test_exists(flags: Rollout) -> None:
    assert flags.exists("chat") is False
    flags.set_feature_data("chat", {"k": 1})
    assert flags.exists("chat") is True
    flags.delete("chat")
    assert flags.exists("chat") is False


def test_feature_states_and_active_features(flags: Rollout) -> None:
    flags.activate("everyone")
    flags.activate_user("listed", 1)
    flags.set("off", False)
    assert flags.feature_states() == {"everyone": True, "listed": False, "off": False}
    assert flags.feature_states(1) == {"everyone": True, "listed": True, "off": False}
    assert flags.feature_states(User(2)) == {"everyone": True, "listed": False, "off": False}
    assert flags.active_features() == ["everyone"]
    assert flags.active_features(1) == ["everyone", "listed"]
    assert flags.active_features("1") == ["everyone", "listed"]


# Flag names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member", [Flag.CHAT, StrFlag.CHAT, PlainFlag.CHAT], ids=["str-Enum", "StrEnum", "Enum"]
)
def test_an_enum_member_is_the_same_flag_as_its_value(flags: Rollout, member: Any) -> None:
    flags.activate_user(member, 1)
    assert flags.features() == ["chat"]
    assert all(type(name) is str for name in flags.features())
    assert flags.active(member, 1) is True
    assert flags.active("chat", 1) is True
    assert flags.user_in_active_users(member, 1) is True
    assert flags.exists(member) is True
    assert flags.get(member).name == "chat"
    assert type(flags.get(member).name) is str
    assert flags.get(member) == flags.get("chat")
    assert flags.multi_get(member)[0].users == {"1"}
    flags.activate(member)
    assert flags.active(member) is True
    flags.set_feature_data(member, {"k": 1})
    flags.activate_group(member, "all")
    assert flags.get("chat").groups == {"all"}
    flags.deactivate(member)
    assert flags.active(member) is False
    assert flags.features() == ["chat"]
    flags.delete(member)
    assert flags.features() == []
    assert flags.exists(member) is False


def test_a_str_enum_member_is_looked_up_by_value_not_by_member_name(flags: Rollout) -> None:
    class Odd(str, Enum):  # noqa: UP042
        BETA = "chat"

    flags.activate("BETA")
    assert flags.active(Odd.BETA) is False
    assert flags.active(Odd.BETA, 1) is False
    flags.activate("chat")
    assert flags.active(Odd.BETA) is True


def test_enum_group_names(flags: Rollout) -> None:
    class Group(StrEnum):
        ADMINS = "admins"

    flags.define_group(Group.ADMINS, lambda user: True)
    flags.activate_group("chat", Group.ADMINS)
    assert flags.get("chat").groups == {"admins"}
    assert flags.active("chat", 1) is True
    assert flags.active_in_group(Group.ADMINS, 1) is True
    flags.deactivate_group("chat", Group.ADMINS)
    assert flags.get("chat").groups == frozenset()


def test_unusual_but_valid_flag_names(flags: Rollout) -> None:
    names = ["x" * 255, "beta ✓", "with space", "a:b|c,d", "ünïcødé"]
    for name in names:
        flags.activate(name)
    assert flags.features() == sorted(names)
    assert all(flags.active(name) for name in names)


# Subscriptions --------------------------------------------------------------------------------


def test_a_subscriber_gets_the_changed_names_after_each_write(flags: Rollout) -> None:
    calls: list[set[str]] = []
    flags.subscribe(calls.append)
    flags.activate("chat")
    flags.activate_user("beta", 1)
    flags.set_feature_data("chat", {"k": 1})
    assert calls == [{"chat"}, {"beta"}, {"chat"}]
    assert all(type(c) is set for c in calls)
    calls.clear()
    flags.clear()
    assert calls == [{"chat", "beta"}]


def test_a_subscriber_sees_the_new_state(flags: Rollout) -> None:
    seen: list[bool] = []
    flags.subscribe(lambda names: seen.append(flags.active("chat")))
    flags.activate("chat")
    assert seen == [True]


def test_a_subscriber_is_told_about_merges(flags: Rollout, clock: FakeClock) -> None:
    calls: list[set[str]] = []
    flags.subscribe(calls.append)
    with Rollout(clock=clock) as other:
        other.activate("a")
        other.activate_user("b", 1)
        assert flags.merge(other.export()) == {"a", "b"}
    assert calls == [{"a", "b"}]


def test_unsubscribe_stops_the_calls(flags: Rollout) -> None:
    calls: list[set[str]] = []
    others: list[set[str]] = []
    unsubscribe = flags.subscribe(calls.append)
    flags.subscribe(others.append)
    flags.activate("a")
    unsubscribe()
    unsubscribe()  # twice is harmless
    flags.activate("b")
    assert calls == [{"a"}]
    assert others == [{"a"}, {"b"}]


def test_a_raising_subscriber_is_logged_and_does_not_reach_the_writer(
    flags: Rollout, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(names: set[str]) -> None:
        raise RuntimeError("subscriber bug")

    calls: list[set[str]] = []
    flags.subscribe(broken)
    flags.subscribe(calls.append)
    with caplog.at_level(logging.ERROR, logger="rollout"):
        flags.activate("chat")
    assert flags.active("chat") is True
    assert calls == [{"chat"}]
    assert any(r.name == "rollout" for r in caplog.records)
    assert flags.stats()["subscriber_errors"] == 1


# Defaults -------------------------------------------------------------------------------------


def test_defaults_given_to_the_constructor() -> None:
    with Rollout(defaults={"on": True, "off": False, "some": 20}) as flags:
        assert flags.active("on") is True
        assert flags.active("on", 1) is True
        assert flags.active("off") is False
        assert flags.active("off", 1) is False
        assert flags.get("some").percentage == 20.0
        assert flags.active("some", 2) is True  # id 2 is in the 20% bucket (Ruby golden)
        assert flags.active("some", 1) is False


def test_set_default(flags: Rollout) -> None:
    flags.set_default("chat", True)
    assert flags.active("chat", 1) is True
    flags.set_default("chat", False)  # a later declaration in code replaces the earlier one
    assert flags.active("chat", 1) is False


def test_any_real_write_wins_over_a_default(flags: Rollout) -> None:
    flags.set_default("chat", True)
    flags.deactivate("chat")
    assert flags.active("chat", 1) is False
    flags.set_default("pct", True)
    flags.activate_percentage("pct", 20)
    assert flags.get("pct").percentage == 20.0
    flags.set_default("on", False)
    flags.activate("on")
    assert flags.active("on") is True


def test_a_default_declared_after_a_real_write_does_not_override_it(flags: Rollout) -> None:
    flags.set("chat", False)
    flags.set_default("chat", True)
    assert flags.active("chat", 1) is False
    flags.activate_percentage("pct", 20)
    flags.set_default("pct", 100)
    assert flags.get("pct").percentage == 20.0


def test_a_real_write_from_another_replica_wins_over_a_default(
    flags: Rollout, clock: FakeClock
) -> None:
    flags.set_default("chat", True)
    with Rollout(clock=clock) as other:
        other.set("chat", False)
        flags.merge(other.export())
    assert flags.active("chat", 1) is False


def test_defaults_are_not_exported(flags: Rollout) -> None:
    with Rollout() as empty:
        empty_export = empty.export()
    flags.set_default("chat", True)
    assert flags.export() == empty_export
    with Rollout() as other:
        assert other.merge(flags.export()) == set()
        assert other.features() == []
        assert other.active("chat") is False


def test_a_restarting_process_with_defaults_does_not_reset_the_cluster(
    flags: Rollout, clock: FakeClock
) -> None:
    flags.set("chat", False)
    with Rollout(defaults={"chat": True}, clock=clock) as restarted:
        restarted.merge(flags.export())
        assert restarted.active("chat") is False
        flags.merge(restarted.export())
    assert flags.active("chat") is False


# Replication through export()/merge() ---------------------------------------------------------


def test_export_and_merge_copy_the_whole_state(flags: Rollout) -> None:
    flags.activate_percentage("chat", 20)
    flags.activate_percentage_of_time("chat", 5)
    flags.activate_users("chat", [1, "two"])
    flags.exclude_user("chat", 3)
    flags.activate_group("chat", "admins")
    flags.set_feature_data("chat", {"owner": "web", "tags": [1, 2]})
    flags.activate("signup")
    flags.set("off", False)
    flags.activate("gone")
    flags.delete("gone")
    with Rollout() as other:
        assert other.merge(flags.export()) == {"chat", "signup", "off"}
        assert other.features() == flags.features()
        for name in ("chat", "signup", "off", "gone"):
            assert other.get(name) == flags.get(name)
        assert other.export() == flags.export()
        assert other.merge(flags.export()) == set()  # merging twice changes nothing


def test_concurrent_edits_on_two_replicas_are_both_kept(clock: FakeClock) -> None:
    with Rollout(clock=clock) as a, Rollout(clock=clock) as b:
        a.activate_user("chat", 1)
        b.activate_user("chat", 2)
        a.set_feature_data("chat", {"a": 1})
        b.set_feature_data("chat", {"b": 2})
        a.merge(b.export())
        b.merge(a.export())
        for replica in (a, b):
            assert replica.get("chat").users == {"1", "2"}
            assert dict(replica.get("chat").data) == {"a": 1, "b": 2}
        assert a.export() == b.export()


def test_a_write_that_follows_another_wins_even_from_a_slow_clock() -> None:
    fast, slow = FakeClock(1_700_000_000_000), FakeClock(1_700_000_000_000 - 20_000)
    with Rollout(clock=fast) as a, Rollout(clock=slow) as b:
        a.activate("chat")
        b.merge(a.export())
        b.deactivate("chat")  # caused by what b saw; its wall clock is 20 s behind
        a.merge(b.export())
        assert a.active("chat") is False
        assert b.active("chat") is False


def test_the_wall_clock_going_back_never_undoes_a_later_write(
    flags: Rollout, clock: FakeClock
) -> None:
    flags.activate("chat")
    clock.advance(-3_600_000)
    # The step back moved the flag (stamped in that future) to the quarantine: a removal would
    # find no flag, so the operator says what is wanted, declaratively.
    flags.set("chat", False)
    assert flags.active("chat") is False
    # A step back beyond max_offset: the writes stamped in that future wait in the quarantine
    # (tests/client/test_quarantine.py), rather than every later write being stamped there too.
    assert {e.origin for e in flags.quarantined("chat")} == {"own clock"}
    clock.advance(-3_600_000)
    flags.activate_user("chat", 1)
    assert flags.get("chat").users == {"1"}
    clock.advance(10 * 3_600_000)  # and a jump forward is fine too
    flags.deactivate_user("chat", 1)
    assert flags.get("chat").users == frozenset()


def test_a_blob_from_too_far_in_the_future_stays_rejected_after_the_clock_catches_up() -> None:
    here, ahead = FakeClock(), FakeClock()
    ahead.advance(3_600_000)
    with Rollout(clock=here) as a, Rollout(clock=ahead) as b:
        b.activate("chat")
        before = a.export()
        assert a.merge(b.export()) == set()
        assert a.export() == before
        assert a.exists("chat") is False
        assert a.stats()["registers_rejected"] > 0
        here.advance(3_600_000)
        # Not a time bomb: judged once, it stays in the quarantine until resolved.
        assert a.merge(b.export()) == set()
        assert a.exists("chat") is False
        a.accept_quarantined("chat")
        assert a.active("chat") is True


@pytest.mark.parametrize(
    "write",
    [
        lambda r: r.activate_user("f", ""),
        lambda r: r.activate_user("f", " "),
        lambda r: r.exclude_user("f", ""),
        lambda r: r.activate_users("f", ["a\tb", "x"]),
    ],
    ids=["empty-user", "blank-user", "empty-excluded", "tab-user"],
)
def test_whatever_a_write_accepts_export_can_carry(
    flags: Rollout, write: Callable[[Rollout], object]
) -> None:
    before = flags.export()
    try:
        write(flags)
    except (TypeError, ValueError):
        assert flags.export() == before  # refusing the id is fine too, if nothing is written
        return
    with Rollout() as other:
        other.merge(flags.export())
        assert other.get("f") == flags.get("f")


# Lifecycle ------------------------------------------------------------------------------------


WRITES: list[Callable[[Rollout], object]] = [
    lambda r: r.activate("chat"),
    lambda r: r.deactivate("chat"),
    lambda r: r.set("chat", True),
    lambda r: r.set("chat", False),
    lambda r: r.delete("chat"),
    lambda r: r.clear(),
    lambda r: r.activate_user("chat", 2),
    lambda r: r.deactivate_user("chat", 1),
    lambda r: r.activate_users("chat", [2, 3]),
    lambda r: r.deactivate_users("chat", [1]),
    lambda r: r.set_users("chat", [5]),
    lambda r: r.exclude_user("chat", 1),
    lambda r: r.include_user("chat", 1),
    lambda r: r.activate_group("chat", "admins"),
    lambda r: r.deactivate_group("chat", "all"),
    lambda r: r.activate_percentage("chat", 10),
    lambda r: r.deactivate_percentage("chat"),
    lambda r: r.activate_percentage_of_time("chat", 10),
    lambda r: r.deactivate_percentage_of_time("chat"),
    lambda r: r.set_feature_data("chat", {"k": 2}),
    lambda r: r.clear_feature_data("chat"),
]


@pytest.fixture
def closed() -> Rollout:
    flags = Rollout()
    flags.activate_user("chat", 1)
    flags.activate_group("chat", "all")
    flags.set_feature_data("chat", {"k": 1})
    flags.close()
    return flags


@pytest.mark.parametrize("write", WRITES)
def test_writes_after_close_raise_closed_error_and_change_nothing(
    closed: Rollout, write: Callable[[Rollout], object]
) -> None:
    before = closed.export()
    with pytest.raises(ClosedError):
        write(closed)
    assert closed.export() == before


def test_checks_still_answer_after_close(closed: Rollout) -> None:
    assert closed.active("chat", 1) is True
    assert closed.active("chat", 99) is True
    assert closed.active("chat") is False
    assert closed.get("chat").users == {"1"}
    assert closed.features() == ["chat"]
    assert closed.feature_states(1) == {"chat": True}
    assert closed.stats()["closed"] is True


def test_close_is_idempotent(flags: Rollout) -> None:
    assert flags.stats()["closed"] is False
    flags.close()
    flags.close()
    assert flags.stats()["closed"] is True


def test_the_context_manager_closes() -> None:
    with Rollout() as flags:
        assert isinstance(flags, Rollout)
        flags.activate("chat")
    with pytest.raises(ClosedError):
        flags.activate("other")
    assert flags.active("chat") is True


def test_closed_error_is_a_rollout_error() -> None:
    assert issubclass(rollout.ClosedError, rollout.RolloutError)
    assert issubclass(rollout.FormatError, ValueError)
    assert issubclass(rollout.FormatError, rollout.RolloutError)


def test_stats_count_writes(flags: Rollout) -> None:
    writes = flags.stats()["writes"]
    flags.activate("a")
    flags.activate("b")
    stats = flags.stats()
    assert stats["writes"] == writes + 2
    assert stats["flags"] == 2
    assert stats["store"] == "memory"


def test_refresh_picks_up_what_another_process_wrote_to_the_same_sqlite_file(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Rollout(url) as app, Rollout(url) as operator:
        seen: list[set[str]] = []
        app.subscribe(seen.append)
        operator.activate_percentage("chat", 30)
        operator.activate_user("beta", "alice")
        assert app.exists("chat") is False  # not until it refreshes
        assert app.refresh() == {"chat", "beta"}
        assert app.get("chat").percentage == 30
        assert app.active("beta", "alice") is True
        assert seen == [{"chat", "beta"}]
        assert app.refresh() == set()  # nothing new


def test_refresh_reads_the_sqlite_file_again_only_after_another_connection_wrote(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Rollout(url) as app, Rollout(url) as operator:
        app.activate_users("big", range(1000))
        app.activate("chat")
        assert app.refresh() == set()
        assert app.stats()["store_reloads"] == 0  # its own writes: nothing read
        operator.activate("signup")
        assert app.refresh() == {"signup"}
        assert app.stats()["store_reloads"] == 1
        assert app.refresh() == set()
        assert app.stats()["store_reloads"] == 1


def test_refresh_without_a_store_changes_nothing() -> None:
    flags = Rollout()
    flags.activate("chat")
    assert flags.refresh() == set()
    assert flags.active("chat") is True


def test_defining_a_group_notifies_the_flags_that_use_it(flags: Rollout) -> None:
    flags.activate_group("chat", "admins")
    flags.activate("other")
    seen: list[set[str]] = []
    flags.subscribe(seen.append)
    flags.define_group("admins", lambda user: True)
    flags.define_group("unused", lambda user: True)
    assert seen == [{"chat"}]


def test_replace_feature_data_is_one_write_that_removes_other_keys(flags: Rollout) -> None:
    flags.set_feature_data("chat", {"a": 1, "b": 2})
    flags.replace_feature_data("chat", {"b": 3, "c": 4})
    assert dict(flags.get("chat").data) == {"b": 3, "c": 4}
    event = flags.history("chat")[0]
    assert event.action == "replace_feature_data"
    assert event.before == {"data": {"a": 1, "b": 2}, "data:b": 2, "data:c": None}
    assert len(flags.history("chat")) == 2
    with pytest.raises(TypeError, match="data"):
        flags.replace_feature_data("chat", ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert dict(flags.get("chat").data) == {"b": 3, "c": 4}
