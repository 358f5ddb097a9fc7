"""rollout.integrations: UserFlags, the lazy process-wide Rollout, and staying light to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from enum import Enum
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.integrations import UserFlags
from rollout.integrations._lazy import LazyRollout, check_options


class Flag(Enum):
    CHAT = "chat"


def test_user_flags_check_every_flag_for_its_user(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    flags.activate("signup")
    flags.exclude_user("signup", 7)
    alice, anonymous, excluded = UserFlags(flags, 42), UserFlags(flags), UserFlags(flags, 7)
    assert alice.active("chat")
    assert alice["chat"]
    assert alice.active(Flag.CHAT)
    assert not alice.inactive("chat")
    assert not anonymous.active("chat")
    assert anonymous.active("signup")
    assert not excluded["signup"]
    assert alice.active_features() == list(alice) == ["chat", "signup"]
    assert list(anonymous) == ["signup"]
    assert excluded.feature_states() == {"chat": False, "signup": False}
    assert not alice.active("unknown")
    flags.deactivate("chat")  # a UserFlags is a view, not a snapshot
    assert not alice["chat"]


def test_user_flags_use_the_rollouts_idea_of_a_user_id() -> None:
    class User:
        def __init__(self, name: str) -> None:
            self.name = name

    with Rollout(id_user_by="name") as flags:
        flags.activate_user("chat", "alice")
        assert UserFlags(flags, User("alice")).active("chat")
        with pytest.raises(TypeError, match="user"):
            UserFlags(flags, object()).active("chat")


def test_user_flags_refuse_bad_arguments(flags: Rollout) -> None:
    with pytest.raises(TypeError, match="flags must be a Rollout"):
        UserFlags("sqlite:///flags.db", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str"):
        UserFlags(flags, 42)[1]  # type: ignore[index]
    assert "42" in repr(UserFlags(flags, 42))


def test_the_lazy_rollout_opens_once_and_reopens_after_close(tmp_path: Path) -> None:
    holder = LazyRollout(f"sqlite:///{tmp_path / 'flags.db'}", {"defaults": {"x": True}})
    assert not holder.opened
    first = holder.get()
    assert holder.get() is first
    assert holder.opened
    assert first.active("x")
    first.activate_user("y", 1)
    holder.close()
    holder.close()  # idempotent
    assert first.stats()["closed"] is True
    assert not holder.opened
    second = holder.get()
    assert second is not first
    assert second.active("y", 1)
    holder.close()


def test_options_are_checked_against_rollouts_signature() -> None:
    assert check_options("memory://", {"listen": None}, "here") == {"listen": None}
    with pytest.raises(TypeError, match=r"here: .*'lisen'"):
        check_options("memory://", {"lisen": None}, "here")
    with pytest.raises(TypeError, match="give the store once"):
        check_options("memory://", {"store": "memory://"}, "here")


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


def test_the_process_wide_rollout_is_closed_when_the_process_exits() -> None:
    # atexit runs handlers last-registered first: this printer, registered before the Rollout
    # is made, runs after the integration's close.
    out = _run(
        """
        import atexit
        from rollout.integrations.asgi import ASGIRollout
        box = []
        atexit.register(lambda: print("closed at exit:", box[0].stats()["closed"]))
        rollout = ASGIRollout("memory://")
        box.append(rollout.flags)
        print("open:", not box[0].stats()["closed"])
        """
    )
    assert out.splitlines() == ["open: True", "closed at exit: True"]


def test_importing_the_integrations_imports_no_framework() -> None:
    out = _run(
        """
        import sys, rollout, rollout.integrations, rollout.integrations._lazy
        heavy = {"django", "flask", "starlette", "fastapi", "werkzeug", "jinja2", "asyncio"}
        print(sorted(heavy & set(sys.modules)))
        """
    )
    assert out == "[]"
