"""The NATS transport in one test process: the conformance suites (each transport reaches NATS
through a proxy of its own, so isolate() cuts it off), a cut connection that catches up, and
``Rollout(transport="nats://...")``."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.nats import NatsTransport
from rollout.sync import Transport
from rollout.testing import PartitionConformance, eventually
from rollout.testing.proxy import FaultProxy

from .nats_fixtures import namespace, nats_url  # noqa: F401  (fixtures)


class TestNatsTransport(PartitionConformance):
    deadline = 15.0

    @pytest.fixture(autouse=True)
    def _nats(self, nats_url: str, namespace: str) -> Iterator[None]:  # noqa: F811
        self.address = nats_url.split("://", 1)[1]
        self.namespace = namespace
        self.proxies: list[FaultProxy] = []  # those of the latest make_transports()
        self.all_proxies: list[FaultProxy] = []
        yield
        for proxy in self.all_proxies:
            proxy.close()

    def make_transports(self, count: int) -> list[Transport]:
        self.proxies = []
        transports: list[Transport] = []
        for _ in range(count):
            proxy = FaultProxy(self.address).start()
            self.proxies.append(proxy)
            self.all_proxies.append(proxy)
            transports.append(
                NatsTransport(
                    f"nats://{proxy.address}", namespace=self.namespace, check_interval=1.0
                )
            )
        return transports

    def isolate(self, index: int) -> None:
        self.proxies[index].cut()

    def heal(self) -> None:
        for proxy in self.proxies:
            proxy.heal()


def test_a_process_cut_off_from_nats_catches_up_after_the_link_returns(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    address = nats_url.split("://", 1)[1]
    with FaultProxy(address) as proxy:
        writer = Rollout(transport=NatsTransport(nats_url, namespace=namespace))
        away = Rollout(
            transport=NatsTransport(
                f"nats://{proxy.address}", namespace=namespace, check_interval=1.0
            )
        )
        try:
            assert writer.wait_synced(10)
            assert away.wait_synced(10)
            writer.activate("before")
            eventually(lambda: away.active("before"), what="the first write arrives")
            proxy.cut()
            eventually(lambda: not away.stats()["sync"]["connected"], what="the cut is seen")
            for i in range(20):
                writer.activate_user("during", f"user-{i}")
            away.activate_user("from-away", "offline-write")  # written while cut off
            assert away.active("from-away", "offline-write")
            assert not away.active("during", "user-0")
            proxy.heal()
            eventually(lambda: away.get("during").users == {f"user-{i}" for i in range(20)},
                       what="what was missed while away arrives")  # fmt: skip
            eventually(
                lambda: writer.active("from-away", "offline-write"),
                what="the write made while away reaches the others",
            )
            assert away.wait_synced(10)
            eventually(lambda: away.export() == writer.export(), what="identical replicas")
            assert away.stats()["sync"]["reconnects"] >= 1
        finally:
            writer.close()
            away.close()


def test_rollout_takes_a_nats_url_as_its_transport(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    url = f"{nats_url}?namespace={namespace}"
    with Rollout(transport=url) as first, Rollout(transport=url) as second:
        assert first.wait_synced(10)
        assert second.wait_synced(10)
        first.activate_percentage("chat", 30)
        eventually(lambda: second.get("chat").percentage == 30, what="the write arrives")
        sync = second.stats()["sync"]
        assert sync["transport"] == "nats"
        assert sync["stream"] == f"ROLLOUT_{namespace}"
        assert sync["connected"] is True


def test_namespaces_keep_two_applications_on_one_nats_apart(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    other = f"{namespace}-other"
    try:
        with (
            Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as app,
            Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as app_too,
            Rollout(transport=NatsTransport(nats_url, namespace=other)) as stranger,
        ):
            for flags in (app, app_too, stranger):
                assert flags.wait_synced(10)
            app.activate("chat")
            stranger.activate("beta")
            eventually(lambda: app_too.active("chat"), what="same namespace: arrives")
            assert stranger.wait_synced(10)
            assert app_too.wait_synced(10)
            assert "chat" not in stranger.features()
            assert "beta" not in app.features()
            assert "beta" not in app_too.features()
    finally:
        from .nats_fixtures import delete_stream

        delete_stream(nats_url, f"ROLLOUT_{other}")


def _nats_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "rollout-nats"]


def test_close_leaves_no_thread_whatever_the_connection_is_doing(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    # Connected; unreachable (backing off); half-open (connecting through a link that swallows
    # bytes). Unclosed sockets or pending tasks would fail the test as warnings.
    before = _nats_threads()
    with FaultProxy(nats_url.split("://", 1)[1]) as proxy:
        connected = Rollout(transport=NatsTransport(nats_url, namespace=namespace))
        assert connected.wait_synced(10)
        unreachable = Rollout(transport=NatsTransport(f"nats://{proxy.address}"))
        proxy.cut()
        eventually(lambda: unreachable.stats()["sync"]["errors"] >= 1, what="a failed connect")
        proxy.heal()
        proxy.blackhole()
        hanging = Rollout(transport=NatsTransport(f"nats://{proxy.address}"))
        assert not hanging.wait_synced(0.3)
        for flags in (connected, unreachable, hanging):
            flags.close(5.0)
        assert _nats_threads() == before


def test_wait_synced_at_start_means_the_whole_stream_is_read(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as writer:
        assert writer.wait_synced(10)
        for i in range(3):
            writer.activate(f"flag-{i}")
            assert writer.wait_synced(10)  # one message each
        # A few messages: the server pushes them all before the process has merged them (a
        # race that the processes lost now and then when "read" meant "none left to push").
        for _ in range(30):
            with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as late:
                assert late.wait_synced(10)
                assert len(late.features()) == 3  # at once, not eventually


def test_what_a_process_store_holds_and_the_stream_lacks_is_published(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(store) as offline:  # written before this process ever used NATS
        offline.activate_user("chat", "ann")
    with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as other:
        assert other.wait_synced(10)
        other.activate("beta")
        assert other.wait_synced(10)
        with Rollout(store, transport=NatsTransport(nats_url, namespace=namespace)) as local:
            assert local.wait_synced(10)
            assert local.active("beta")  # read from the stream, and saved in its store
            eventually(lambda: other.active("chat", "ann"), what="published from the store")
            assert local.stats()["sync"]["messages_published"] >= 1
        with Rollout(store) as reopened:
            assert reopened.active("beta")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_replicates_on_a_connection_of_its_own(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    with Rollout(transport=NatsTransport(nats_url, namespace=namespace)) as parent:
        assert parent.wait_synced(10)
        parent.activate("before-fork")
        assert parent.wait_synced(10)
        pid = os.fork()
        if pid == 0:  # the child: write, wait until the stream has it, leave
            code = 1
            try:
                parent.activate_user("from-child", "ann")
                if parent.wait_synced(10) and parent.active("before-fork"):
                    code = 0
                parent.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        eventually(lambda: parent.active("from-child", "ann"), what="the child's write")
        parent.activate("after-fork")  # the parent's connection still works
        assert parent.wait_synced(10)
