"""Faults against a real NATS: bytes that are not ours on our subjects, a change larger than a
message, compaction, the stream deleted under running processes, the server restarted."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path

import nats
import pytest

from rollout import Rollout
from rollout.nats import NatsTransport
from rollout.testing import eventually

from .nats_fixtures import delete_stream, namespace, nats_url, private_nats  # noqa: F401
from .nats_server import NatsServer


def _publish_raw(url: str, messages: list[tuple[str, bytes]]) -> None:
    async def publish() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            js = nc.jetstream()
            for subject, data in messages:
                await js.publish(subject, data)
        finally:
            await nc.close()

    asyncio.run(publish())


def _subject_messages(url: str, stream: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info(stream, subjects_filter=">")
            return dict(info.state.subjects or {})
        finally:
            await nc.close()

    return asyncio.run(read())


def _token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode()


def test_messages_that_are_not_ours_are_dropped_with_a_log_line(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rollout.nats")
    prefix = f"rollout.{namespace}.f"
    with (
        Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as writer,
        Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as reader,
    ):
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        writer.activate_user("chat", "before")
        eventually(lambda: reader.active("chat", "before"), what="the first write arrives")
        other_flag = b'{"flags":{"beta":{"exists":[1,0,1,true]}},"format":"rollout","version":1}'
        _publish_raw(
            nats_url,
            [
                (f"{prefix}.{_token('chat')}", b"\xff\xfe not json"),
                (f"{prefix}.{_token('chat')}", b'{"format":"other"}'),
                (f"{prefix}.{_token('chat')}", other_flag),  # another flag on chat's subject
                (f"{prefix}.!!", b"{}"),  # not a flag's subject at all
            ],
        )
        eventually(lambda: reader.stats()["sync"]["malformed"] == 4, what="four dropped")
        writer.activate_user("chat", "after")
        eventually(lambda: reader.active("chat", "after"), what="replication goes on")
        assert "beta" not in reader.features()
        assert reader.get("chat").users == {"before", "after"}
        with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as late:
            assert late.wait_synced(10)
            assert late.export() == writer.export()  # reading past them from the start too
    dropped = [r for r in caplog.records if "not a rollout change" in r.getMessage()]
    assert len(dropped) >= 4 * 3  # each of the three replicas logged each of the four


def test_a_change_larger_than_a_message_is_split_and_arrives_whole(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    def transport() -> NatsTransport:
        return NatsTransport(nats_url, namespace=namespace, max_message_bytes=4096)

    users = [f"user-{i:05d}" for i in range(3000)]  # about 150 kB of registers
    with Rollout(transport=transport()) as writer, Rollout(transport=transport()) as reader:
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        writer.activate_users("chat", users)
        assert writer.wait_synced(10)
        eventually(lambda: reader.get("chat").users == set(users), what="every user arrives")
        assert writer.stats()["sync"]["messages_published"] > 30
        assert writer.stats()["sync"]["too_large"] == 0


def test_a_flags_messages_are_rolled_up_and_a_late_process_still_gets_everything(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    def transport() -> NatsTransport:
        return NatsTransport(nats_url, namespace=namespace, compact_after=10, check_interval=0.5)

    subject = f"rollout.{namespace}.f.{_token('chat')}"
    with Rollout(transport=transport()) as writer, Rollout(transport=transport()) as other:
        assert writer.wait_synced(10)
        assert other.wait_synced(10)
        for i in range(25):
            flags = writer if i % 2 else other
            flags.activate_user("chat", f"user-{i}")
            assert flags.wait_synced(10)  # one message each (waiting writes go out as one)
        eventually(lambda: len(writer.get("chat").users) == 25, what="all writes merged")
        eventually(
            lambda: writer.stats()["sync"]["rollups"] + other.stats()["sync"]["rollups"] >= 2,
            what="the subject rolled up",
        )
        assert _subject_messages(nats_url, f"ROLLOUT_{namespace}")[subject] < 25
        with Rollout(transport=transport()) as late:
            assert late.wait_synced(10)
            assert late.get("chat").users == {f"user-{i}" for i in range(25)}
            assert late.export() == writer.export()


def test_a_stream_deleted_under_running_processes_is_filled_again_from_them(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    # What a NATS restarted without its storage looks like to the processes.
    def transport() -> NatsTransport:
        return NatsTransport(nats_url, namespace=namespace, check_interval=0.5)

    with Rollout(transport=transport()) as first, Rollout(transport=transport()) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate_percentage("chat", 40)
        second.activate_user("beta", "ann")
        eventually(lambda: first.active("beta", "ann") and second.get("chat").percentage == 40)
        delete_stream(nats_url, f"ROLLOUT_{namespace}")
        eventually(lambda: first.stats()["sync"]["full_reads"] >= 2, what="stream read anew")
        eventually(lambda: second.stats()["sync"]["full_reads"] >= 2, what="by both")
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        with Rollout(transport=transport()) as late:
            assert late.wait_synced(10)
            eventually(lambda: late.export() == first.export(), what="the state is back")
            assert late.active("beta", "ann")
            assert late.get("chat").percentage == 40


def test_nats_restarted_under_running_processes(
    private_nats: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    def transport() -> NatsTransport:
        return NatsTransport(private_nats.url, namespace="app", check_interval=0.5)

    with Rollout(transport=transport()) as first, Rollout(transport=transport()) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate("before")
        eventually(lambda: second.active("before"), what="the first write arrives")
        private_nats.stop()
        eventually(lambda: not first.stats()["sync"]["connected"], what="the loss is seen")
        first.activate_user("while-down", "ann")  # waits in the outbox, never raises
        assert not first.wait_synced(0.2)
        assert first.stats()["sync"]["waiting"] >= 1
        private_nats.start()
        eventually(lambda: second.active("while-down", "ann"), what="it goes out after")
        assert first.wait_synced(10)
        assert first.stats()["sync"]["waiting"] == 0


def _delete_consumers(url: str, stream: str) -> int:
    async def delete() -> int:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            js = nc.jetstream()
            consumers = await js.consumers_info(stream)
            for consumer in consumers:
                await js.delete_consumer(stream, consumer.name)
            return len(consumers)
        finally:
            await nc.close()

    return asyncio.run(delete())


def test_a_consumer_the_server_dropped_is_noticed_and_nothing_is_missed(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    # The server removes a consumer it thinks idle, or loses it: no error reaches the client,
    # messages just stop. The periodic check sees the stream ahead and resumes.
    with (
        Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as writer,
        Rollout(
            transport=NatsTransport(nats_url, namespace=namespace, check_interval=0.5)
        ) as reader,
    ):
        assert writer.wait_synced(10)
        assert reader.wait_synced(10)
        assert _delete_consumers(nats_url, f"ROLLOUT_{namespace}") == 2
        for i in range(5):
            writer.activate_user("chat", f"user-{i}")
        eventually(
            lambda: reader.get("chat").users == {f"user-{i}" for i in range(5)},
            what="the writes made after the consumer was lost",
        )
        assert reader.stats()["sync"]["gaps"] >= 1


def test_a_process_too_slow_for_a_burst_loses_messages_and_recovers_them(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    # The stream holds 300 changes when the process starts: the server pushes them all at once,
    # more than the 4 the process lets wait, so nats-py drops the rest (a slow consumer). The
    # process resumes from the last change it merged until it has them all.
    prefix = f"rollout.{namespace}.f"
    burst = [
        (
            f"{prefix}.{_token(f'flag-{i}')}",
            b'{"flags":{"flag-%d":{"exists":[1,0,%d,true]}},"format":"rollout","version":1}'
            % (i, i + 1),
        )
        for i in range(300)
    ]
    with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as first:
        assert first.wait_synced(10)  # it makes the stream
    _publish_raw(nats_url, burst)
    transport = NatsTransport(nats_url, namespace=namespace, max_pending=4)
    with Rollout(transport=transport) as reader:
        assert reader.wait_synced(60)  # many resumes, each a round trip; slow on a busy machine
        assert len(reader.features()) == 300
        assert reader.stats()["sync"]["gaps"] >= 1
