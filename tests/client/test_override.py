"""``flags.override(name, True/False)``: a flag's answer forced in this process, for tests."""

from __future__ import annotations

import asyncio
import enum
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rollout import Rollout
from rollout.integrations import UserFlags

if TYPE_CHECKING:  # a type only (a Protocol the library defines for the type checker)
    from rollout._core.evaluate import ActiveCheck


@dataclass
class User:
    id: int


def test_a_with_block_forces_the_answer_and_the_end_restores_it(flags: Rollout) -> None:
    flags.activate("on")
    flags.activate_percentage("some", 50)
    with flags.override("on", False), flags.override("some", True), flags.override("new", True):
        assert not flags.active("on")
        assert flags.active("some")
        assert all(flags.active("some", User(i)) for i in range(100))  # every user
        assert flags.active("new")  # never written anywhere
    assert flags.active("on")
    assert not flags.active("some")
    assert sum(flags.active("some", User(i)) for i in range(100)) not in (0, 100)
    assert not flags.active("new")


def test_everything_built_on_active_follows(flags: Rollout) -> None:
    flags.activate("on")
    flags.activate("other")
    with flags.override("on", False), flags.override("new", True):
        assert flags.inactive("on")
        assert not flags.inactive("new")
        assert flags.feature_states() == {"new": True, "on": False, "other": True}
        assert flags.active_features(User(1)) == ["new", "other"]
        seen_by_user = UserFlags(flags, User(7))
        assert seen_by_user["new"]
        assert not seen_by_user.active("on")
        assert list(seen_by_user) == ["new", "other"]
    assert flags.feature_states() == {"on": True, "other": True}
    assert flags.active_features() == ["on", "other"]


class Flag(enum.Enum):
    CHAT = "chat"


class StrFlag(enum.StrEnum):
    CHAT = "chat"


def test_enum_names_are_the_same_flag(flags: Rollout) -> None:
    with flags.override(Flag.CHAT, True):
        assert flags.active("chat")
        assert flags.active(Flag.CHAT)
        assert flags.active(StrFlag.CHAT, User(1))
    assert not flags.active(Flag.CHAT)


def test_overrides_nest_and_each_restores_what_it_found(flags: Rollout) -> None:
    flags.activate("chat")
    with flags.override("chat", False):
        assert not flags.active("chat")
        with flags.override("chat", True):
            assert flags.active("chat")
            with flags.override("chat", False):
                assert not flags.active("chat")
            assert flags.active("chat")
        assert not flags.active("chat")
    assert flags.active("chat")


def test_one_override_object_can_be_entered_again_and_nested(flags: Rollout) -> None:
    off = flags.override("chat", False)
    flags.activate("chat")
    with off:
        with off:
            assert not flags.active("chat")
        assert not flags.active("chat")
    assert flags.active("chat")
    with off:
        assert not flags.active("chat")


def test_as_a_decorator_of_functions_and_coroutines(flags: Rollout) -> None:
    @flags.override("chat", True)
    def greet(name: str) -> str:
        """Say hello."""
        return f"hello {name}" if flags.active("chat") else "hi"

    @flags.override("chat", True)
    async def agreet(name: str) -> str:
        await asyncio.sleep(0)
        return f"hello {name}" if flags.active("chat") else "hi"

    assert greet("ann") == "hello ann"
    assert (greet.__name__, greet.__doc__) == ("greet", "Say hello.")
    assert not flags.active("chat")
    assert asyncio.run(agreet("bob")) == "hello bob"
    assert not flags.active("chat")


def test_an_exception_still_restores(flags: Rollout) -> None:
    @flags.override("chat", True)
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        broken()
    with pytest.raises(KeyError), flags.override("chat", True):
        raise KeyError("x")
    assert not flags.active("chat")


def test_it_is_local_written_nowhere_and_recorded_nowhere(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as here, Rollout(url) as there:
        here.activate("chat")
        there.refresh()
        before = (here.export(), here.stats()["writes"], here.history("chat"))
        with here.override("chat", False), here.override("new", True):
            assert there.refresh() == set()
            assert (here.export(), here.stats()["writes"], here.history("chat")) == before
            assert here.features() == ["chat"]
            assert here.get("chat").percentage == 100  # the stored state is untouched
            assert there.active("chat")
            assert not there.active("new")
        with Rollout(url) as restarted:
            assert restarted.active("chat")
            assert restarted.features() == ["chat"]


def test_it_survives_changes_arriving_meanwhile(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as here, Rollout(url) as there:
        here.activate("chat")
        there.refresh()
        with here.override("chat", True), here.override("beta", False):
            there.deactivate("chat")
            there.activate("beta")
            assert here.refresh() == {"chat", "beta"}
            assert here.active("chat")
            assert not here.active("beta")
            other = Rollout()
            other.activate_user("beta", 1)
            here.merge(other.export())
            here.deactivate("chat")  # a local write, too
            assert here.active("chat")
            assert not here.active("beta", 1)
        # What arrived meanwhile shows as soon as the overrides end.
        assert not here.active("chat")
        assert here.active("beta")


def test_it_applies_to_every_thread(flags: Rollout) -> None:
    answers: list[bool] = []
    with flags.override("chat", True):
        thread = threading.Thread(target=lambda: answers.append(flags.active("chat")))
        thread.start()
        thread.join()
    assert answers == [True]


def test_concurrent_decorated_calls_end_only_their_own_override(flags: Rollout) -> None:
    inside = threading.Barrier(2)
    first_done = threading.Event()
    seen: dict[str, bool] = {}

    @flags.override("chat", True)
    def first() -> None:
        inside.wait()
        seen["first"] = flags.active("chat")

    @flags.override("chat", True)
    def second() -> None:
        inside.wait()
        first_done.wait()
        seen["second, after first ended"] = flags.active("chat")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[0].join()
    first_done.set()
    threads[1].join()
    assert seen == {"first": True, "second, after first ended": True}
    assert not flags.active("chat")


def test_checks_cost_nothing_extra_once_no_override_is_left(flags: Rollout) -> None:
    original = flags.active
    with flags.override("chat", True):
        assert flags.active != original
    assert flags.active == original  # the same compiled check, as a method of its own class
    assert vars(type(flags))["active"] is flags._active_method
    assert "feature_states" not in vars(flags)


def test_a_wrapper_installed_meanwhile_is_left_in_place_and_answers_right(
    flags: Rollout,
) -> None:
    # Like the admin's check sampler: another wrapper joins the check slot while an override is
    # on, and the override ends first. Neither knows of the other.
    calls: list[Any] = []

    def wrap(inner: ActiveCheck) -> ActiveCheck:
        def counting(name: Any, user: Any = None) -> bool:
            calls.append(name)
            return inner(name, user)

        return counting

    slot = flags._check_slot
    with flags.override("chat", True):
        token = slot.install(wrap)
        assert flags.active("chat")
    assert not flags.active("chat")  # the override is gone, the counting wrapper is not
    flags.activate("chat")
    assert flags.active("chat")
    assert calls == ["chat", "chat", "chat"]
    slot.uninstall(token)
    # Nothing left: the bare check, at no extra cost.
    assert vars(type(flags))["active"] is flags._active_method


def test_an_override_begun_inside_another_wrapper_outlives_it(flags: Rollout) -> None:
    slot = flags._check_slot
    token = slot.install(lambda inner: lambda name, user=None: inner(name, user))
    with flags.override("chat", True):
        slot.uninstall(token)
        assert flags.active("chat")
    assert not flags.active("chat")
    assert vars(type(flags))["active"] is flags._active_method


def test_a_bad_user_is_still_an_error(flags: Rollout) -> None:
    with flags.override("chat", True), pytest.raises(TypeError, match="user has no id"):
        flags.active("chat", 1.5)


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("chat", 1, TypeError, "value must be a bool, got 1"),
        ("chat", "yes", TypeError, "value must be a bool, got 'yes'"),
        ("chat", None, TypeError, "value must be a bool, got None"),
        (3, True, TypeError, "name must be a str"),
        ("", True, ValueError, "name must not be empty"),
    ],
)
def test_bad_arguments_are_refused(
    flags: Rollout, name: object, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        flags.override(name, value)  # type: ignore[arg-type]


def test_decorating_something_that_is_not_a_function_is_refused(flags: Rollout) -> None:
    with pytest.raises(TypeError, match="override decorates a function, got 3"):
        flags.override("chat", True)(3)  # type: ignore[arg-type]


def test_overrides_shows_what_is_forced_right_now(flags: Rollout) -> None:
    assert dict(flags.overrides) == {}
    with flags.override("chat", True), flags.override("search", False):
        assert dict(flags.overrides) == {"chat": True, "search": False}
        with pytest.raises(TypeError):
            flags.overrides["chat"] = False  # type: ignore[index]
    assert dict(flags.overrides) == {}
