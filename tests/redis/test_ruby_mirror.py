# ruff: noqa: F811  (pytest fixtures imported from redis_fixtures are parameters here)
"""`ruby_compat=True`: the Ruby rollout gem's keys kept current both ways, on a real Redis.

Keys go under a Ruby namespace (the gem's namespace option is a key prefix) equal to the test's
namespace, so every test's keys are its own and are deleted afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rollout import Rollout
from rollout.testing import eventually

from .redis_fixtures import client, namespace, private_redis, redis_url  # noqa: F401  (fixtures)
from .redis_server import RedisServer, with_namespace

GOLDEN: dict[str, Any] = json.loads(
    next(
        p / "shared/golden/ruby-rollout-2.6.2.json"
        for p in Path(__file__).resolve().parents
        if (p / "shared/golden/ruby-rollout-2.6.2.json").is_file()
    ).read_text()
)

# The golden recording's calls, in our API (User(42) is the id 42).
GOLDEN_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("activate_percentage", ("chat", 20)),
    ("activate_group", ("chat", "caretakers")),
    ("activate_user", ("chat", 42)),
    ("activate_users", ("chat", [7, "user-9"])),
    ("set_feature_data", ("chat", {"description": "Chat v2", "owner": "a|b"})),
    ("activate", ("signup",)),
    ("deactivate_user", ("chat", 42)),
    ("deactivate", ("signup",)),
    ("activate_percentage", ("beta", 0.5)),
    ("delete", ("beta",)),
]


@pytest.fixture
def ruby(redis_url: str, namespace: str) -> Iterator[Callable[..., Rollout]]:
    made: list[Rollout] = []

    def make(**options: Any) -> Rollout:
        flags = Rollout(
            with_namespace(redis_url, namespace),
            ruby_compat=True,
            ruby_namespace=namespace,
            **options,
        )
        made.append(flags)
        return flags

    yield make
    for flags in made:
        flags.close()


def ruby_keys(client: redis.Redis, namespace: str) -> dict[str, Any]:
    prefix = f"{namespace}:"
    return {
        key[len(prefix) :]: client.get(key) for key in client.scan_iter(match=f"{prefix}feature:*")
    }


def test_every_golden_record_is_written_byte_for_byte(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    flags = ruby()
    for (method, args), recorded in zip(GOLDEN_CALLS, GOLDEN["records"], strict=True):
        getattr(flags, method)(*args)
        assert ruby_keys(client, namespace) == recorded["keys"], recorded["after"]


def test_records_written_by_the_gem_read_back_as_the_same_flags(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    flags = ruby()
    for key, value in GOLDEN["records"][-1]["keys"].items():  # what the gem left, raw
        client.set(f"{namespace}:{key}", value)
    eventually(lambda: flags.features() == ["chat", "signup"])
    chat = flags.get("chat")
    assert chat.percentage == 20
    assert chat.users == {"7", "user-9"}
    assert chat.groups == {"caretakers"}
    assert dict(chat.data) == {"description": "Chat v2", "owner": "a|b"}
    assert flags.get("signup").percentage == 0
    # Round trip: Ruby record -> flags -> Ruby record, unchanged.
    eventually(lambda: ruby_keys(client, namespace) == GOLDEN["records"][-1]["keys"])


def test_a_ruby_edit_reaches_every_process_and_keeps_concurrent_python_changes(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    one, two = ruby(), ruby()
    one.activate_percentage("chat", 20)
    one.activate_user("chat", "python-1")
    key = f"{namespace}:feature:chat"
    eventually(lambda: client.get(key) == "20.0|python-1||{}")
    # A Ruby process reads "20.0|python-1||{}", adds a user and a group, and writes it back...
    ruby_view = "20.0|python-1,ruby-1|admins|{}"
    # ...while a Python process adds its own user: both must survive.
    two.exclude_user("chat", "banned")
    client.set(key, ruby_view)
    for flags in (one, two):
        eventually(lambda f=flags: f.get("chat").users == {"python-1", "ruby-1"})  # type: ignore[misc]
        eventually(lambda f=flags: f.get("chat").groups == {"admins"})  # type: ignore[misc]
        assert flags.get("chat").excluded_users == {"banned"}
    # The history says the Ruby process made the change.
    eventually(lambda: any(e.actor == "ruby" for e in one.history("chat")))
    ruby_events = [e for e in one.history("chat") if e.actor == "ruby"]
    assert {e.action for e in ruby_events} <= {"activate_users", "activate_group", "activate_user"}


def test_a_flag_created_or_deleted_by_ruby_is_created_or_deleted_here(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    flags = ruby()
    flags.activate("old")
    eventually(lambda: client.get(f"{namespace}:feature:__features__") == "old")
    client.set(f"{namespace}:feature:new", "30|u1||{}")
    client.set(f"{namespace}:feature:__features__", "old,new")
    eventually(lambda: flags.exists("new"))
    assert flags.get("new").percentage == 30
    client.delete(f"{namespace}:feature:old")
    client.set(f"{namespace}:feature:__features__", "new")
    eventually(lambda: not flags.exists("old"))


def test_a_ruby_removal_from_a_flag_not_here_creates_it_as_the_gem_does(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    # The mirror remembers a record of "ghost" that this replica does not have (deleted here
    # while Ruby changed it). Ruby's change is removals, and every save of the gem creates the
    # flag: replayed here, they create it too, rather than raise UnknownFlagError.
    client.hset(f"{namespace}:ruby:mirror", "ghost", "20|u1||{}")
    client.set(f"{namespace}:feature:ghost", "0|||{}")
    client.set(f"{namespace}:feature:__features__", "ghost")
    flags = ruby()
    eventually(lambda: flags.exists("ghost"))
    assert flags.get("ghost").percentage == 0
    assert flags.history("ghost")[-1].actor == "ruby"
    assert flags.stats()["ruby"]["errors"] == 0


def test_ids_and_names_the_format_cannot_hold_are_refused_and_nothing_is_written(
    ruby: Callable[..., Rollout],
    client: redis.Redis,
    namespace: str,
) -> None:
    flags = ruby()
    flags.activate("chat")
    before_state, before_keys = flags.export(), ruby_keys(client, namespace)
    writes: list[Callable[[], None]] = [
        lambda: flags.activate_user("chat", "a,b"),
        lambda: flags.activate_users("chat", ["fine", "a|b"]),
        lambda: flags.activate_group("chat", "x,y"),
        lambda: flags.activate("a,b"),
    ]
    for write in writes:
        with pytest.raises(ValueError, match="Ruby rollout"):
            write()
    assert flags.export() == before_state
    assert ruby_keys(client, namespace) == before_keys


def test_randomized_percentages_are_the_gems_buckets(ruby: Callable[..., Rollout]) -> None:
    flags = ruby(randomize_percentage=True)
    for name, ids in GOLDEN["randomized"].items():
        flags.activate_percentage(name, 20)
        assert [i for i in range(1, 2001) if flags.active(name, i)] == ids


def test_keyspace_notifications_pick_a_ruby_change_up_without_waiting_for_a_poll(
    private_redis: RedisServer,
) -> None:
    # A private server: notify-keyspace-events is a server-wide setting.
    admin = redis.Redis.from_url(private_redis.url, decode_responses=True)
    admin.config_set("notify-keyspace-events", "K$")
    flags = Rollout(
        with_namespace(private_redis.url, "app"),
        ruby_compat=True,
        ruby_poll_interval=60,  # no poll will come within the test
    )
    try:
        eventually(lambda: (flags.stats()["ruby"] or {}).get("keyspace_notifications") == 1)
        # The mirror's thread sent PSUBSCRIBE; Redis has processed it once it counts the pattern
        # (a private server: the mirror's is the only one), so no notification can be missed.
        eventually(lambda: admin.pubsub_numpat() == 1, what="the mirror's pattern subscription")
        admin.set("feature:x", "40|||{}")
        admin.set("feature:__features__", "x")
        # Well within ruby_poll_interval: only the notification can have brought it.
        eventually(lambda: flags.exists("x"), timeout=10)
        assert flags.get("x").percentage == 40
    finally:
        flags.close()
        admin.close()


# Bad records from Ruby: isolated to their own flag ------------------------------------------

#: Records no Python write can hold, each for the flag "bad": data nested 1,000 deep (the
#: gem's JSON writes it), a lone surrogate (a JSON escape), a group name the rule refuses, and
#: bytes that are not UTF-8.
BAD_RECORDS: dict[str, bytes] = {
    "nested 1,000 deep": b'0|||{"k":' + b"[" * 1000 + b"]" * 1000 + b"}",
    "lone surrogate": b'0|||{"k":"x\\ud800"}',
    "group name refused": b"0||admins ,ok|{}",
    "not UTF-8": b"0|u\xff||{}",
}


@pytest.mark.parametrize("record", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_bad_ruby_record_is_isolated_to_its_flag(
    ruby: Callable[..., Rollout],
    redis_url: str,
    namespace: str,
    record: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Another test's in-process CLI may have quietened "rollout": listen to this logger itself.
    caplog.set_level(logging.INFO, logger="rollout.ruby")
    flags = ruby(ruby_poll_interval=0.05)
    flags.activate("bad")
    flags.activate_percentage("good", 10)
    raw = redis.Redis.from_url(redis_url)  # bytes in, bytes out: the gem's view of the keys
    try:
        eventually(lambda: raw.get(f"{namespace}:feature:good") == b"10|||{}")
        before = flags.get("bad")
        raw.set(f"{namespace}:feature:bad", record)
        # Then a Ruby change to another flag, made after the bad record: it still arrives.
        raw.set(f"{namespace}:feature:good", b"30|u1||{}")
        eventually(
            lambda: (
                (flags.get("good").percentage, flags.get("good").users) == (30.0, frozenset({"u1"}))
            ),
            what="Ruby's change to good",
        )
        assert flags.get("bad") == before  # nothing of the bad record was applied
        refused = [r for r in caplog.records if "Ruby record of 'bad'" in r.getMessage()]
        assert len(refused) == 1, [r.getMessage() for r in refused]  # reported once, not per poll
        assert flags.stats()["ruby"]["errors"] >= 1
        # Fixed in Ruby: applied as usual.
        raw.set(f"{namespace}:feature:bad", b"50|||{}")
        eventually(lambda: flags.get("bad").percentage == 50, what="the fixed record")
    finally:
        raw.close()


def test_a_flag_name_the_rule_refuses_in_rubys_list_is_skipped(
    ruby: Callable[..., Rollout], redis_url: str, namespace: str
) -> None:
    flags = ruby(ruby_poll_interval=0.05)
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.set(f"{namespace}:feature:..", b"40|||{}")
        raw.set(f"{namespace}:feature:x\xff", b"40|||{}")
        raw.set(f"{namespace}:feature:fine", b"40|||{}")
        raw.set(f"{namespace}:feature:__features__", b"..,x\xff,fine")
        eventually(lambda: flags.exists("fine"), what="the good flag of the list")
        assert flags.features() == ["fine"]
    finally:
        raw.close()
