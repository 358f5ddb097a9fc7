"""One rule for removals: from a flag that does not exist, an error naming it, nothing written.

Adds create the flag (as before); ``set(name, False)`` creates it off (declarative).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout, UnknownFlagError

#: Every removal of the facade, called on the flag "ghost".
REMOVALS: dict[str, Callable[[Rollout], Any]] = {
    "deactivate": lambda f: f.deactivate("ghost"),
    "delete": lambda f: f.delete("ghost"),
    "deactivate_user": lambda f: f.deactivate_user("ghost", 42),
    "deactivate_users": lambda f: f.deactivate_users("ghost", [42, 7]),
    "include_user": lambda f: f.include_user("ghost", 42),
    "include_users": lambda f: f.include_users("ghost", [42, 7]),
    "deactivate_group": lambda f: f.deactivate_group("ghost", "admins"),
    "deactivate_percentage": lambda f: f.deactivate_percentage("ghost"),
    "deactivate_percentage_of_time": lambda f: f.deactivate_percentage_of_time("ghost"),
    "clear_feature_data": lambda f: f.clear_feature_data("ghost"),
}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return None if request.param == "memory" else f"sqlite:///{tmp_path / 'flags.db'}"


@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_a_removal_from_a_flag_that_does_not_exist_raises_and_writes_nothing(
    removal: str, store: str | None
) -> None:
    with Rollout(store) as flags:
        flags.activate("other")
        changed: list[set[str]] = []
        flags.subscribe(changed.append)
        before = flags.export()
        with pytest.raises(UnknownFlagError) as raised:
            REMOVALS[removal](flags)
        assert str(raised.value) == "no flag named 'ghost' (nothing was changed)"
        assert raised.value.flag == "ghost"
        assert isinstance(raised.value, LookupError)
        assert flags.features() == ["other"]
        assert flags.history("ghost") == []
        assert flags.export() == before
        assert changed == []
        assert flags.stats()["writes"] == 1
    if store is not None:  # nothing reached the file either
        with Rollout(store) as reopened:
            assert reopened.features() == ["other"]
            assert reopened.history("ghost") == []


@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_a_removal_from_a_deleted_flag_raises_too(flags: Rollout, removal: str) -> None:
    flags.activate_user("ghost", 42)
    flags.delete("ghost")
    with pytest.raises(UnknownFlagError):
        REMOVALS[removal](flags)
    assert flags.features() == []
    assert [e.action for e in flags.history("ghost")] == ["delete", "activate_user"]


def test_a_flag_declared_by_a_default_exists_for_removals(flags: Rollout) -> None:
    flags.set_default("declared", True)
    flags.deactivate("declared")
    assert flags.active("declared") is False
    with pytest.raises(UnknownFlagError, match="'undeclared'"):
        flags.deactivate("undeclared")
    assert flags.features() == ["declared"]


def test_set_false_is_declarative_and_creates_the_flag_off(flags: Rollout) -> None:
    flags.set("ghost", False)
    assert flags.features() == ["ghost"]
    assert flags.active("ghost") is False
    flags.set("ghost", False)  # and again: nothing to change, no error
    assert [e.action for e in flags.history("ghost")] == ["deactivate"]
