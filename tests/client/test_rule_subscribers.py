"""``subscribe_rules``: a change of a named rule reaches its subscribers, whichever process
made it, while ``subscribe`` keeps being told of flags only (never the rules' entity)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout._core.keys import RULES_ENTITY
from rollout.testing import eventually

from ..redis.redis_fixtures import namespace, redis_url  # noqa: F401  (fixtures)
from ..redis.redis_server import with_namespace

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}


class Customer:
    def __init__(self) -> None:
        self.id = 1
        self.plan = "pro"


class Told:
    """What the two kinds of subscriber of one Rollout were told."""

    def __init__(self, flags: Rollout) -> None:
        self.rules: list[set[str]] = []
        self.flags: list[set[str]] = []
        flags.subscribe_rules(self.rules.append)
        flags.subscribe(self.flags.append)

    def clear(self) -> None:
        self.rules.clear()
        self.flags.clear()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'flags.db'}"


@pytest.fixture
def flags(store: str) -> Iterator[Rollout]:
    with Rollout(store) as rollout:
        yield rollout


def cli(store: str, *args: str) -> None:
    """The CLI in its own process, writing to the shared SQLite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "--store", store, *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_rule_no_flag_uses_changed_in_another_process_reaches_rule_subscribers(
    store: str, flags: Rollout
) -> None:
    told = Told(flags)
    cli(store, "define-rule", "pro", json.dumps(PRO))
    assert flags.refresh() == set()  # no flag's answers changed
    assert told.rules == [{"pro"}]
    assert told.flags == []

    told.clear()
    cli(store, "define-rule", "pro", json.dumps({"==": [{"var": "plan"}, "max"]}))
    flags.refresh()
    assert told.rules == [{"pro"}]

    told.clear()
    cli(store, "remove-rule", "pro")
    flags.refresh()
    assert told.rules == [{"pro"}]
    assert flags.rules() == {}
    assert told.flags == []


def test_flag_subscribers_hear_of_the_flags_a_rule_change_touches_never_the_rules(
    store: str, flags: Rollout
) -> None:
    flags.activate_group("chat", "pro")  # a segment: the named rule as a group
    flags.activate("other")
    told = Told(flags)
    cli(store, "define-rule", "pro", json.dumps(PRO))
    flags.refresh()
    assert told.rules == [{"pro"}]
    assert told.flags == [{"chat"}]
    assert all(RULES_ENTITY not in names for names in told.flags)
    assert flags.active("chat", Customer())


def test_a_rule_changed_by_another_process_reaches_a_subscriber_through_redis(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    store = with_namespace(redis_url, namespace)
    with Rollout(store) as flags:
        assert flags.wait_synced(10)
        told = Told(flags)
        cli(store, "define-rule", "pro", json.dumps(PRO))  # no refresh: Redis tells this process
        eventually(lambda: told.rules == [{"pro"}], what="the rule at the subscriber")
        cli(store, "remove-rule", "pro")
        eventually(lambda: told.rules == [{"pro"}, {"pro"}], what="its removal")
        assert told.flags == []


def test_a_rule_changed_through_one_it_refers_to_is_told_too(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    flags.define_rule("not_pro", {"!": {"$ref": "pro"}})
    told = Told(flags)
    flags.define_rule("pro", {"==": [{"var": "plan"}, "max"]})
    assert told.rules == [{"pro", "not_pro"}]


def test_an_unchanged_rule_written_again_tells_nobody(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    told = Told(flags)
    flags.define_rule("pro", PRO)
    flags.activate("chat")
    assert told.rules == []
    assert told.flags == [{"chat"}]


def test_unsubscribed_is_told_no_more(flags: Rollout) -> None:
    rules: list[set[str]] = []
    unsubscribe = flags.subscribe_rules(rules.append)
    flags.define_rule("pro", PRO)
    unsubscribe()
    flags.remove_rule("pro")
    assert rules == [{"pro"}]


def test_subscribe_rules_needs_a_callable(flags: Rollout) -> None:
    with pytest.raises(TypeError, match="callback must be callable, got 42"):
        flags.subscribe_rules(42)  # type: ignore[arg-type]
