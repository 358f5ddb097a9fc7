"""The write path through a Redis store: one command per write, what it publishes, its echo.

Every write is one EVALSHA of the cached merge script, which merges the registers, records the
history event and publishes the change; the writer does not merge its own change again when it
comes back on the channel, and every other process still does.
"""

from __future__ import annotations

import json
import os
import threading

import pytest
import redis

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.codec import decode_flags
from rollout._core.keys import DATA, EXISTS, HISTORY, PERCENTAGE, RESET, USER, history_key
from rollout._core.state import Register
from rollout.redis import RedisStore
from rollout.testing import eventually

from .redis_fixtures import (  # noqa: F401  (fixtures)
    changes,
    client,
    namespace,
    private_redis,
    published,
    redis_url,
    store,
)
from .redis_server import RedisServer, with_namespace


def test_a_write_reaches_the_others_and_its_writer_does_not_merge_it_again(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    url = with_namespace(redis_url, namespace)
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        for user in range(5):
            writer.activate_user("chat", user)
        eventually(lambda: reader.get("chat").users == {"0", "1", "2", "3", "4"})
        # The writer hears each of its five changes back and skips them (applied already);
        # the reader merged all five.
        eventually(lambda: writer.stats()["sync"]["own_writes_skipped"] == 5)
        assert reader.stats()["sync"]["own_writes_skipped"] == 0
        assert writer.get("chat").users == reader.get("chat").users
        for flags in (writer, reader):
            events = [e for e in flags.history("chat") if e.action == "activate_user"]
            assert len(events) == 5  # recorded once, and replicated with the change
        reader.deactivate_user("chat", 0)  # and the other way round
        eventually(lambda: not writer.active("chat", 0), what="the reader's write at the writer")
        assert writer.stats()["sync"]["own_writes_skipped"] == 5
        assert writer.export() == reader.export()


def test_a_write_is_one_command_to_redis(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    client: redis.Redis,  # noqa: F811
) -> None:
    url = with_namespace(redis_url, namespace)
    marker = f"{namespace}:marker"
    with Rollout(url) as flags:
        assert flags.wait_synced(10)
        flags.activate_user("chat", "warm")  # the first write may load the script
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]
            seen: list[str] = []
            started = threading.Event()

            def watch() -> None:
                started.set()
                for command in monitor.listen():
                    # Commands the script runs are shown too, marked as Lua's: not round trips.
                    if command.get("client_type") != "lua" and namespace in command["command"]:
                        seen.append(command["command"])
                        if marker in command["command"]:
                            return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            started.wait(5)
            for user in range(3):
                flags.activate_user("chat", user)
            redis.Redis.from_url(redis_url).get(marker)
            watcher.join(10)
    writes = [command for command in seen if marker not in command]
    assert [command.split()[0] for command in writes] == ["EVALSHA"] * 3, writes


def test_the_published_change_is_the_replication_format(
    store: RedisStore,  # noqa: F811
    changes: redis.client.PubSub,  # noqa: F811
) -> None:
    """Readers of every version decode the channel's message with decode_flags: keys and values
    that JSON must escape, a watermark (no value), a number and a history event included."""
    ts = Timestamp(1_700_000_000_000, 3, 2**63 - 1)
    delta = {
        'ch"at\\é': {
            EXISTS: Register(ts, True),
            RESET: Register(ts, None),
            PERCENTAGE: Register(ts, 12.5),
            USER + 'a "quoted"\nuser ☃': Register(ts, False),
            DATA + "owner": Register(ts, {"name": "wéb", "list": [1, None, "x"]}),
            history_key(ts): Register(ts, {"action": "activate", "after": {}, "before": {}}),
        },
        "beta": {EXISTS: Register(Timestamp(5, 0, 0), True)},
    }
    store.save(delta)
    version, origin, flags_json = published(changes)[0].split(" ", 2)
    assert (version, origin) == ("1", store.origin)
    assert decode_flags(json.loads(flags_json)) == delta
    assert store.load() == delta
    assert HISTORY in flags_json


def test_a_write_after_redis_closed_the_connection_is_sent_again_on_a_new_one(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    url = with_namespace(private_redis.url, "killed")
    with Rollout(url) as flags, private_redis.client() as admin:
        assert flags.wait_synced(10)
        flags.activate_user("chat", "before")
        # Every connection closed by the server (an idle time-out, a CLIENT KILL): the store's
        # next write finds its connection closed before sending, and reconnects. Twice: the
        # check watches the socket it has, the new one after a reconnect.
        for after in ("after", "after again"):
            admin.client_kill_filter(_type="normal", skipme=True)
            flags.activate_user("chat", after)
            assert flags.active("chat", after)
    with Rollout(url) as fresh:
        assert fresh.get("chat").users == {"before", "after", "after again"}


def test_two_rollouts_on_one_store_object_save_from_two_threads(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    store: RedisStore,  # noqa: F811
) -> None:
    # One store object, two Rollouts (each with its own write lock), writing at once: the kept
    # save connection is checked and used by one thread at a time, so no reply is read by the
    # wrong thread and no socket closed under a reply.
    errors: list[BaseException] = []
    with Rollout(store) as first, Rollout(store) as second:

        def write(flags: Rollout, prefix: str) -> None:
            try:
                for i in range(300):
                    flags.activate_user("chat", f"{prefix}{i}")
            except BaseException as exc:  # reported by the test
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(first, "a")),
            threading.Thread(target=write, args=(second, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        wanted = {f"a{i}" for i in range(300)} | {f"b{i}" for i in range(300)}
        with Rollout(with_namespace(redis_url, namespace)) as fresh:
            assert fresh.get("chat").users == wanted


def test_a_forked_child_saves_on_a_connection_of_its_own(store: RedisStore) -> None:  # noqa: F811
    # The parent's kept save connection is its own: a child writing on that socket would read
    # the parent's replies (or the parent the child's). The child makes its own connection.
    store.save({"chat": {USER + "parent-before": Register(Timestamp(1, 0, 1), True)}})
    pid = os.fork()
    if pid == 0:  # the child: save, and say by the exit status whether it worked
        try:
            store.save({"chat": {USER + "child": Register(Timestamp(2, 0, 2), True)}})
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.save({"chat": {USER + "parent-after": Register(Timestamp(3, 0, 1), True)}})
    users = {key for key in store.load()["chat"] if key.startswith(USER)}
    assert users == {USER + "parent-before", USER + "child", USER + "parent-after"}


def test_text_outside_ascii_is_stored_as_sent(
    store: RedisStore,  # noqa: F811
    client: redis.Redis,  # noqa: F811
) -> None:
    # The write is sent as bytes the store writes itself: each part's length is its UTF-8
    # length, not its number of characters (a wrong one shifts every later argument).
    ts = Timestamp(1_700_000_000_000, 0, 9)
    users = ["é", "☃ snow", "😀" * 3, "plain"]
    store.save(
        {
            "chat": {USER + user: Register(ts, True) for user in users}
            | {DATA + "ünïcode": Register(ts, {"wörd": "☃"})}
        }
    )
    fields = {str(key) for key in client.hgetall(f"{store.namespace}:flag:chat")}  # decoded
    assert {key for key in fields if key.startswith(USER)} == {USER + u for u in users}
    assert store.load()["chat"][DATA + "ünïcode"].value == {"wörd": "☃"}


def test_a_client_given_to_the_store_keeps_its_retry_policy(
    private_redis: RedisServer,  # noqa: F811
) -> None:
    # A client made by the application carries its retry policy (redis-py's default retries a
    # failed command on a new connection); the store's writes follow it, as redis-py's own
    # commands do.
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    retrying = redis.Redis.from_url(private_redis.url, retry=Retry(NoBackoff(), 2))
    given = RedisStore(retrying, namespace="retried")
    failures = {"left": 1}
    try:
        given.save({"chat": {EXISTS: Register(Timestamp(1, 0, 1), True)}})
        with given._saver.client() as saver:
            connection = saver.connection
        assert connection is not None
        sent = connection.send_packed_command

        def fail_once(command: object, check_health: bool = True) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise redis.ConnectionError("Error 32 while writing to socket. Broken pipe.")
            sent(command, check_health)  # type: ignore[no-untyped-call]

        connection.send_packed_command = fail_once  # type: ignore[method-assign]
        given.save({"chat": {USER + "retried": Register(Timestamp(2, 0, 1), True)}})
        assert failures["left"] == 0
        assert USER + "retried" in given.load()["chat"]
    finally:
        given.close()


def test_a_local_write_is_published_with_its_timestamp_beside_the_origin(
    store: RedisStore,  # noqa: F811
    changes: redis.client.PubSub,  # noqa: F811
) -> None:
    # A change whose registers all carry one timestamp (every local write) names it in the
    # message's second field, so that its writer knows its echo without decoding the change;
    # readers that take the field as a word (every older version) are unaffected.
    ts = Timestamp(1_700_000_000_000, 4, 2**63 - 1)
    store.save({"chat": {EXISTS: Register(ts, True), USER + "a": Register(ts, True)}})
    _, origin, flags_json = published(changes)[0].split(" ", 2)
    assert origin == f"{store.origin}@{ts.wall}.{ts.counter}.{ts.node}"
    assert decode_flags(json.loads(flags_json)) == {
        "chat": {EXISTS: Register(ts, True), USER + "a": Register(ts, True)}
    }


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_changes_arrive_on_either_protocol(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    protocol: str,
) -> None:
    # The subscriber reads messages straight from its connection: RESP2's arrays and RESP3's
    # pushes (a list subclass with hiredis) are both messages.
    url = with_namespace(redis_url, namespace) + f"&protocol={protocol}"
    with Rollout(url) as writer, Rollout(url) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        writer.activate_user("chat", "a")
        eventually(lambda: reader.active("chat", "a"), what="the writer's change at the reader")
        eventually(lambda: writer.stats()["sync"]["own_writes_skipped"] == 1)
        assert reader.stats()["sync"]["messages_received"] == 1
