"""Provider status from the Rollout's readiness, through the real OpenFeature API.

A real redis-server this test starts and stops, real peers over loopback TCP, a real SQLite file
deleted under the process: the provider emits PROVIDER_STALE / PROVIDER_ERROR /
PROVIDER_READY as they go away and come back, and the client's status follows. (OpenFeature
1.7.1 provider status, 5.1 provider events; evaluation_v2.feature's "Provider status
accessibility" for the stale and error providers.)
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from rollout import Rollout
from rollout.openfeature import RolloutProvider
from rollout.openfeature._status import health
from rollout.testing.cluster import free_port

from ..redis.redis_fixtures import private_redis  # noqa: F401  (fixture)
from ..redis.redis_server import RedisServer, with_namespace

#: Generous: handlers run on the SDK's thread pool, peers redial with a backoff. A passing test
#: never waits this long.
TIMEOUT = 30.0
STATUS_EVENTS = (
    ProviderEvent.PROVIDER_READY,
    ProviderEvent.PROVIDER_STALE,
    ProviderEvent.PROVIDER_ERROR,
)
_domains = itertools.count()


class StatusEvents:
    """Every READY / STALE / ERROR event the client receives, in order."""

    def __init__(self, client: OpenFeatureClient, flags: Rollout) -> None:
        self._client = client
        self._flags = flags
        self.received: queue.Queue[tuple[ProviderEvent, EventDetails]] = queue.Queue()
        for event in STATUS_EVENTS:
            client.add_handler(event, lambda details, e=event: self.received.put((e, details)))  # type: ignore[misc]

    def next(self) -> tuple[ProviderEvent, EventDetails]:
        try:
            return self.received.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no status event in {TIMEOUT} s; {self._what_it_saw()}")

    def _what_it_saw(self) -> str:
        """What the watch read and what the provider holds, for a failure to be read later."""
        provider = self._client.provider
        watch = getattr(provider, "_status", None)
        return (
            f"health() now: {health(self._flags)}; the watch's status: "
            f"{watch.status if watch is not None else None}; the SDK's status: "
            f"{self._client.get_provider_status()}; attached: {hasattr(provider, '_on_emit')}; "
            f"sync: {self._flags.stats()['sync']}; members: {self._members()}"
        )

    def _members(self) -> object:
        try:
            return self._flags.members()
        except Exception as exc:  # a closed Rollout, or no loop to ask
            return exc

    def drain_ready(self) -> None:
        """The handler added to a READY provider runs at once (5.3.3): skip that one."""
        event, _ = self.next()
        assert event == ProviderEvent.PROVIDER_READY


Attach = Callable[[Rollout], tuple[OpenFeatureClient, StatusEvents]]


@pytest.fixture
def attach() -> Iterator[Attach]:
    def attach(flags: Rollout) -> tuple[OpenFeatureClient, StatusEvents]:
        domain = f"status-{next(_domains)}"
        api.set_provider_and_wait(RolloutProvider(flags, status_interval=0.05), domain=domain)
        client = api.get_client(domain)
        events = StatusEvents(client, flags)
        events.drain_ready()
        return client, events

    yield attach
    api.shutdown()


def test_redis_going_away_is_stale_and_coming_back_is_ready(
    private_redis: RedisServer,  # noqa: F811
    attach: Attach,
) -> None:
    with Rollout(with_namespace(private_redis.url, "of")) as flags:
        assert flags.wait_synced(10)
        flags.activate_user("chat", 42)
        client, events = attach(flags)
        assert client.get_provider_status() == ProviderStatus.READY

        private_redis.stop()
        event, details = events.next()
        assert event == ProviderEvent.PROVIDER_STALE
        assert details.message
        assert client.get_provider_status() == ProviderStatus.STALE
        # Stale, not broken: checks still answer from what was loaded.
        answer = client.get_boolean_details("chat", False, EvaluationContext("42"))
        assert (answer.value, answer.error_code) == (True, None)

        private_redis.start()  # the same port
        event, _ = events.next()
        assert event == ProviderEvent.PROVIDER_READY
        assert client.get_provider_status() == ProviderStatus.READY

        flags.close()  # it follows nothing any more
        event, details = events.next()
        assert event == ProviderEvent.PROVIDER_ERROR
        assert "closed" in (details.message or "")
        assert client.get_provider_status() == ProviderStatus.ERROR
    assert events.received.empty()  # one event per change, never the same twice


def test_the_peers_going_away_is_stale_and_coming_back_is_ready(attach: Attach) -> None:
    address = f"127.0.0.1:{free_port()}"
    first = Rollout(listen=address)
    with Rollout(listen="127.0.0.1:0", peers=[address]) as flags:
        try:
            assert flags.wait_synced(TIMEOUT, peers=1)
            client, events = attach(flags)
            first.close()
            event, details = events.next()
            assert event == ProviderEvent.PROVIDER_STALE
            assert "peer" in (details.message or "")
            assert client.get_provider_status() == ProviderStatus.STALE
            first = Rollout(listen=address)  # back, at the same address
            event, _ = events.next()
            assert event == ProviderEvent.PROVIDER_READY
            assert client.get_provider_status() == ProviderStatus.READY
        finally:
            first.close()


def test_a_rollout_already_stale_when_the_provider_is_set_is_reported_stale() -> None:
    # Its one seed refuses connections: stale from the start. The SDK sets READY when
    # initialize() returns; the watch's STALE must come after that, or READY would stand.
    with Rollout(listen="127.0.0.1:0", peers=[f"127.0.0.1:{free_port()}"]) as flags:
        domain = f"status-{next(_domains)}"
        try:
            api.set_provider_and_wait(RolloutProvider(flags, status_interval=0.5), domain=domain)
            client = api.get_client(domain)
            events = StatusEvents(client, flags)  # the status set now runs its handler at once
            event, details = events.next()
            if event == ProviderEvent.PROVIDER_READY:  # READY still: then STALE comes
                event, details = events.next()
            assert event == ProviderEvent.PROVIDER_STALE
            assert "peer" in (details.message or "")
            assert client.get_provider_status() == ProviderStatus.STALE
        finally:
            api.shutdown()


def test_a_store_that_refuses_to_serve_is_an_error(tmp_path: Path, attach: Attach) -> None:
    path = tmp_path / "flags.db"
    with Rollout(f"sqlite:///{path}") as flags:
        client, events = attach(flags)
        path.unlink()  # deleted under the process: writes would go nowhere
        event, details = events.next()
        assert event == ProviderEvent.PROVIDER_ERROR
        assert "refuses" in (details.message or "")
        assert client.get_provider_status() == ProviderStatus.ERROR


def test_status_interval_is_checked(flags: Rollout) -> None:
    for bad in (0, -1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="status_interval must be"):
            RolloutProvider(flags, status_interval=bad)  # type: ignore[arg-type]
    # None reads nothing: no thread, no status events.
    provider = RolloutProvider(flags, status_interval=None)
    provider.initialize(EvaluationContext())
    flags.close()
    provider.shutdown()
