"""RolloutProvider's lifecycle and events through the real OpenFeature API.

Local writes, a second process's writes picked up from a shared SQLite file by ``refresh()``,
and a peer's writes arriving over real loopback TCP all emit PROVIDER_CONFIGURATION_CHANGED with
the changed flag names. Requirement numbers are the OpenFeature specification's (provider
section 2.x, events section 5.x).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.provider import FeatureProvider, ProviderStatus

from rollout import Rollout
from rollout.openfeature import RolloutProvider

CHANGED = ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
#: Generous: handlers run on the SDK's thread pool and peers connect over TCP; a passing test
#: never waits this long.
TIMEOUT = 20.0


class Events:
    """An event handler that queues what it receives, to wait on."""

    def __init__(self) -> None:
        self.received: queue.Queue[EventDetails] = queue.Queue()

    def __call__(self, details: EventDetails) -> None:
        self.received.put(details)

    def next(self) -> EventDetails:
        return self.received.get(timeout=TIMEOUT)

    def changed_until(self, name: str) -> list[list[str]]:
        """Every flags_changed list received up to the first that names ``name``."""
        seen: list[list[str]] = []
        while not seen or name not in seen[-1]:
            seen.append(list(self.next().flags_changed or []))
        return seen

    def changed_until_all(self, names: set[str]) -> set[str]:
        """Every flag name received until each of ``names`` has been named.

        In any order: the SDK runs each handler call on a thread pool of several workers, so
        two events emitted a moment apart can reach the handler the other way round.
        """
        seen: set[str] = set()
        while not names <= seen:
            seen.update(self.next().flags_changed or [])
        return seen

    def empty(self) -> bool:
        return self.received.empty()


class Attached:
    """What the SDK does to a provider, done by hand: events are then delivered synchronously."""

    def __init__(self, provider: RolloutProvider) -> None:
        self.events: list[tuple[ProviderEvent, ProviderEventDetails]] = []
        provider.attach(self.record)

    def record(
        self, provider: FeatureProvider, event: ProviderEvent, details: ProviderEventDetails
    ) -> None:
        self.events.append((event, details))


@pytest.fixture(autouse=True)
def clean_api() -> Iterator[None]:
    yield
    api.shutdown()


def test_5_1_1_and_5_1_2_a_local_write_runs_client_and_api_handlers(flags: Rollout) -> None:
    api.set_provider_and_wait(RolloutProvider(flags), domain="local")
    client = api.get_client("local")
    on_client, on_api = Events(), Events()
    client.add_handler(CHANGED, on_client)
    api.add_handler(CHANGED, on_api)
    flags.activate_users("chat", ["1", "2"])
    for handler in (on_client, on_api):
        details = handler.next()
        assert details.flags_changed == ["chat"]
        assert details.provider_name == "rollout"  # 5.2.3
    flags.set_feature_data("banner", {"value": "hi"})
    assert on_client.next().flags_changed == ["banner"]
    assert client.get_string_value("banner", "", EvaluationContext("1")) == ""  # not on yet


def test_5_1_3_handlers_of_clients_bound_to_another_provider_do_not_run(flags: Rollout) -> None:
    with Rollout() as other_flags:
        api.set_provider_and_wait(RolloutProvider(flags), domain="ours")
        api.set_provider_and_wait(RolloutProvider(other_flags), domain="theirs")
        ours, theirs = Events(), Events()
        api.get_client("ours").add_handler(CHANGED, ours)
        api.get_client("theirs").add_handler(CHANGED, theirs)
        flags.activate("chat")
        assert ours.next().flags_changed == ["chat"]
        other_flags.activate("other")  # its event comes after any stray one for "chat"
        assert theirs.next().flags_changed == ["other"]
        assert theirs.empty()


def test_a_change_made_by_another_process_on_the_same_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url) as here, Rollout(url) as elsewhere:
        api.set_provider_and_wait(RolloutProvider(here), domain="sqlite")
        client = api.get_client("sqlite")
        events = Events()
        client.add_handler(CHANGED, events)
        assert client.get_boolean_details("chat", False, EvaluationContext("42")).error_code
        elsewhere.activate_user("chat", "42")
        elsewhere.set_feature_data("limit", {"value": 5})
        assert here.refresh() == {"chat", "limit"}
        assert sorted(events.next().flags_changed or []) == ["chat", "limit"]
        assert client.get_boolean_value("chat", False, EvaluationContext("42")) is True
        assert client.get_integer_value("limit", 1, EvaluationContext("42")) == 1  # off: default


def test_a_change_replicated_from_a_peer_over_tcp() -> None:
    with Rollout(listen="127.0.0.1:0") as writer:
        address = writer.stats()["sync"]["address"]
        with Rollout(listen="127.0.0.1:0", peers=[address]) as reader:
            api.set_provider_and_wait(RolloutProvider(reader), domain="peer")
            client = api.get_client("peer")
            events = Events()
            client.add_handler(CHANGED, events)
            context = EvaluationContext("42")
            assert client.get_boolean_details("chat", False, context).error_code
            writer.activate("warm-up")
            assert events.changed_until("warm-up")[-1] == ["warm-up"]
            # Now cached by the provider: the replicated change below must drop it.
            assert client.get_boolean_details("warm-up", False, context).value is True
            writer.deactivate("warm-up")
            writer.activate_user("chat", "42")
            # Both writes arrive, apart or merged in one batch (and the SDK may hand their events
            # over in either order: the peer tests check the order changes are applied in).
            assert events.changed_until_all({"chat", "warm-up"}) == {"chat", "warm-up"}
            assert client.get_boolean_details("chat", False, context).value is True
            assert client.get_boolean_details("warm-up", True, context).value is False


def test_2_4_1_and_5_3_1_initialize_takes_the_global_context_and_ready_handlers_run(
    flags: Rollout,
) -> None:
    api.set_evaluation_context(EvaluationContext("global-user", {"plan": "pro"}))
    ready = Events()
    api.add_handler(ProviderEvent.PROVIDER_READY, ready)
    api.set_provider_and_wait(RolloutProvider(flags), domain="ready")
    client = api.get_client("ready")
    names = {ready.next().provider_name}  # first the no-op default provider's, already ready
    while "rollout" not in names:
        names.add(ready.next().provider_name)
    assert client.get_provider_status() == ProviderStatus.READY
    late = Events()
    client.add_handler(ProviderEvent.PROVIDER_READY, late)  # 5.3.3: runs at once
    assert late.next().provider_name == "rollout"
    flags.activate_user("chat", "global-user")  # the global context's key is used
    assert client.get_boolean_value("chat", False) is True


def test_2_5_1_and_2_5_2_shutdown_stops_events_and_initialize_starts_them_again(
    flags: Rollout,
) -> None:
    provider = RolloutProvider(flags)
    attached = Attached(provider)
    flags.activate("before-initialize")
    assert attached.events == []  # not initialized: not subscribed
    provider.initialize(EvaluationContext())
    provider.initialize(EvaluationContext())  # twice: still one subscription
    flags.activate("chat")
    assert attached.events == [(CHANGED, ProviderEventDetails(flags_changed=["chat"]))]
    provider.shutdown()
    flags.deactivate("chat")
    assert len(attached.events) == 1
    # Uninitialized again, it still answers, from the current state (nothing stale cached).
    context = EvaluationContext("42")
    assert provider.resolve_boolean_details("chat", True, context).value is False
    provider.initialize(EvaluationContext())
    flags.activate_user("chat", "42")
    assert attached.events[-1] == (CHANGED, ProviderEventDetails(flags_changed=["chat"]))
    assert len(attached.events) == 2
    assert provider.resolve_boolean_details("chat", False, context).value is True
    provider.shutdown()
    provider.shutdown()  # idempotent


def test_2_5_2_the_sdk_shuts_the_provider_down_and_can_set_it_again(flags: Rollout) -> None:
    provider = RolloutProvider(flags)
    api.set_provider_and_wait(provider, domain="again")
    client = api.get_client("again")
    api.clear_providers()  # shuts every provider down, on this thread
    assert api.get_client("again").get_provider_status() == ProviderStatus.READY  # the no-op
    assert client.provider is not provider
    api.set_provider_and_wait(provider, domain="again")
    events = Events()
    client.add_handler(CHANGED, events)
    flags.activate("chat")
    assert events.next().flags_changed == ["chat"]
    assert client.get_boolean_value("chat", False) is True


def test_the_rollout_stays_open_after_shutdown(flags: Rollout) -> None:
    api.set_provider_and_wait(RolloutProvider(flags), domain="open")
    api.shutdown()
    flags.activate("chat")  # would raise ClosedError if the provider had closed it
    assert flags.active("chat")
