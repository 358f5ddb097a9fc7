"""``GET /metrics``: the Prometheus text a scraper reads, parsed with prometheus_client's parser.

The app here is ``metrics_routes`` alone in a Starlette app, spoken to over ASGI (its lifespan
run as a server runs it); the whole admin app with its token is tested over a real socket in
test_serve.py. Checks are counted by the real sampler thread; the tests give it short windows and
wait for windows to complete, then assert on counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from rollout import Rollout
from rollout._core.clock import system_clock_ms
from rollout.admin._metrics import metrics_routes, stop_sampling
from rollout.admin._sampling import CheckSampler, sampler_for
from rollout.testing import eventually
from rollout.testing.cluster import free_port

#: Enough sampler windows to be sure checks were counted, however slow the machine.
ROUNDS = 5000


class Scrape:
    """One scrape: ``value(name, **labels)``; ``series(name)`` lists the label sets present."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in self.families.values()
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]


@contextlib.asynccontextmanager
async def metrics_client(
    flags: Rollout, *, window: float = 0.005, period: float = 0.005
) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=metrics_routes(flags, window=window, period=period))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


@pytest.fixture
def flags() -> Iterator[Rollout]:
    with Rollout() as rollout:
        yield rollout
        stop_sampling(rollout)


@pytest.mark.anyio
async def test_flags_writes_merges_and_errors_are_read_from_stats_at_scrape_time(
    flags: Rollout,
) -> None:
    async with metrics_client(flags) as client:
        first = await scrape(client)
        assert first.value("rollout_flags") == 0
        assert first.value("rollout_writes_total") == 0
        assert first.families["rollout_writes"].type == "counter"
        assert first.value("rollout_info", node=flags.stats()["node"], node_name=flags.node_name,
                           store="memory") == 1  # fmt: skip

        flags.activate("chat")
        flags.activate_user("beta", 42)
        flags.define_group("broken", lambda user: 1 / 0)
        flags.activate_group("beta", "broken")
        assert not flags.active("beta", 7)  # the predicate raises: counted, says no
        with Rollout() as elsewhere:
            elsewhere.activate("search")
            flags.merge(elsewhere.export())

        after = await scrape(client)
    assert after.value("rollout_flags") == 3
    assert after.value("rollout_writes_total") == 3
    assert after.value("rollout_merges_total") == 1
    assert after.value("rollout_group_errors_total") == 1
    assert after.value("rollout_registers_rejected_total") == 0
    assert after.value("rollout_subscriber_errors_total") == 0
    assert after.series("rollout_sync_deltas_sent_total") == []  # no transport, no sync metrics


@pytest.mark.anyio
async def test_replication_counters_of_a_peer_transport() -> None:
    address = f"127.0.0.1:{free_port()}"
    with (
        Rollout(listen=address, insecure=True) as node,
        Rollout(peers=[address], insecure=True) as writer,
    ):
        assert writer.wait_synced(30, peers=1)
        arrived = threading.Event()
        node.subscribe(lambda names: arrived.set() if "chat" in names else None)
        async with metrics_client(node) as client, metrics_client(writer) as writer_client:
            writer.activate("chat")
            assert arrived.wait(30)
            seen = await scrape(client)
            dialled = await scrape(writer_client)
        stop_sampling(node)
        stop_sampling(writer)
    peer = {"transport": "peer"}
    assert seen.value("rollout_sync_peers_connected", **peer) == 1
    assert seen.families["rollout_sync_members"].type == "gauge"  # the writer has no address
    assert seen.value("rollout_sync_deltas_received_total", **peer) >= 1
    assert seen.value("rollout_sync_connections_opened_total", **peer) >= 1
    assert seen.value("rollout_sync_frames_rejected_auth_total", **peer) == 0
    assert seen.value("rollout_sync_clock_skew", **peer) == 0
    assert seen.value("rollout_merges_total") >= 1
    # The writer dialled the node: it knows it as a member, with the time of the last exchange.
    assert dialled.value("rollout_sync_members", **peer) == 1
    assert dialled.value("rollout_sync_deltas_sent_total", **peer) >= 1
    last_sync = {**peer, "peer": address}
    assert dialled.series("rollout_sync_last_sync_timestamp_seconds") == [last_sync]
    assert dialled.value("rollout_sync_last_sync_timestamp_seconds", **last_sync) > 0
    # The verdict on the writer's clock: its one peer agrees, so it writes.
    assert dialled.value("rollout_clock_writable", **peer) == 1
    assert dialled.value("rollout_clock_state", **peer, state="ok") == 1
    assert dialled.value("rollout_clock_state", **peer, state="unconfirmed") == 0
    assert dialled.value("rollout_clock_voters", **peer) == 2
    assert dialled.value("rollout_clock_agreeing", **peer) == 2
    assert dialled.series("rollout_clock_peer_offset_seconds") == [{**peer, "peer": address}]
    assert abs(dialled.value("rollout_clock_peer_offset_seconds", **peer, peer=address)) < 1


@pytest.mark.anyio
async def test_a_clock_the_majority_disagrees_with_shows_as_not_writable() -> None:
    from rollout.memory import MemoryNetwork
    from rollout.testing import FakeClock

    now, ahead = FakeClock(), FakeClock()
    ahead.advance(120_000)  # two minutes ahead of the two others; max_offset is 30 s
    with MemoryNetwork(anti_entropy_interval=0.05) as network:
        honest = [Rollout(transport=network.transport(n), clock=now) for n in ("a", "b")]
        fast = Rollout(transport=network.transport("fast"), clock=ahead)
        try:
            eventually(lambda: fast.stats()["sync"]["clock"]["state"] == "outlier")
            eventually(lambda: honest[0].stats()["sync"]["clock"]["voters"] == 3)
            async with metrics_client(fast) as client, metrics_client(honest[0]) as other:
                seen, healthy = await scrape(client), await scrape(other)
            stop_sampling(fast)
            stop_sampling(honest[0])
        finally:
            for replica in [*honest, fast]:
                replica.close()
    memory = {"transport": "memory"}
    assert seen.value("rollout_clock_writable", **memory) == 0
    assert seen.value("rollout_clock_state", **memory, state="outlier") == 1
    assert seen.value("rollout_clock_state", **memory, state="ok") == 0
    assert seen.value("rollout_clock_voters", **memory) == 3
    assert seen.value("rollout_clock_agreeing", **memory) == 1
    assert seen.value("rollout_sync_clock_skew", **memory) == 1
    # The fake clocks are two minutes apart; the offset also holds the time a message queued.
    assert seen.value("rollout_clock_peer_offset_seconds", **memory, peer="a") == pytest.approx(
        -120, abs=0.5
    )
    assert healthy.value("rollout_clock_writable", **memory) == 1
    assert healthy.value("rollout_clock_agreeing", **memory) == 2
    offset = healthy.value("rollout_clock_peer_offset_seconds", **memory, peer="fast")
    assert offset == pytest.approx(120, abs=0.5)


async def checks_until_sampled(
    client: httpx.AsyncClient, run_checks: object, *, windows: int = 3
) -> Scrape:
    """Run checks, scraping between rounds, until ``windows`` more sampling windows are done."""
    assert callable(run_checks)
    start = (await scrape(client)).value("rollout_check_sampling_windows_total")
    for _ in range(ROUNDS):
        run_checks()
        seen = await scrape(client)
        if seen.value("rollout_check_sampling_windows_total") >= start + windows:
            return seen
    raise AssertionError(f"fewer than {windows} sampling windows in {ROUNDS} rounds")


@pytest.mark.anyio
async def test_checks_are_counted_by_flag_and_result_while_the_sampler_runs(
    flags: Rollout,
) -> None:
    flags.activate("on")
    flags.activate_percentage("half", 50)
    original = flags.active
    users = range(200)
    expected_half_on = sum(flags.active("half", user) for user in users)
    assert 0 < expected_half_on < len(users)

    def run_checks() -> None:
        for user in users:
            flags.active("on")
            flags.active("half", user)
            flags.active("missing")

    async with metrics_client(flags) as client:
        before = await scrape(client)  # the first scrape starts the sampler
        assert before.series("rollout_checks_total") == []
        assert before.value("rollout_check_sampling_duty_cycle_ratio") == 1.0
        seen = await checks_until_sampled(client, run_checks)
    checks = {(s["flag"], s["result"]): seen.value("rollout_checks_total", **s)
              for s in seen.series("rollout_checks_total")}  # fmt: skip
    # "missing" is no flag: counted, but not under a label of its own.
    assert set(checks) == {("on", "on"), ("half", "on"), ("half", "off")}
    assert all(count > 0 for count in checks.values())
    assert seen.value("rollout_unknown_flag_checks_total") > 0
    # After the app and the sampler stop, the Rollout has its own check back, uncounted.
    stop_sampling(flags)
    assert flags.active == original


@pytest.mark.anyio
async def test_the_counter_grows_with_more_checks_and_stops_when_sampling_stops(
    flags: Rollout,
) -> None:
    flags.activate("chat")

    def run_checks() -> None:
        for _ in range(500):
            flags.active("chat")

    async with metrics_client(flags) as client:
        first = await checks_until_sampled(client, run_checks)
        second = await checks_until_sampled(client, run_checks)
        assert second.value("rollout_checks_total", flag="chat", result="on") > first.value(
            "rollout_checks_total", flag="chat", result="on"
        )
    # Stopped (as at the app's shutdown): checks are no longer counted.
    stop_sampling(flags)
    stopped = sampler_for(flags).totals()
    run_checks()
    assert sampler_for(flags).totals() == stopped
    assert not sampler_for(flags).running


class Flag(enum.Enum):
    CHAT = "chat"


@pytest.mark.anyio
async def test_enum_names_are_labelled_by_value_and_unknown_names_get_no_label(
    flags: Rollout,
) -> None:
    flags.activate("chat")
    flags.activate("gone")

    def run_checks() -> None:
        for i in range(100):
            flags.active(Flag.CHAT)
            flags.active("gone")
            flags.active(f"typo-{i}")

    async with metrics_client(flags) as client:
        seen = await checks_until_sampled(client, run_checks)
        assert {s["flag"] for s in seen.series("rollout_checks_total")} == {"chat", "gone"}
        assert seen.value("rollout_unknown_flag_checks_total") > 0
        # A deleted flag's series ends: the bound is the flags that exist now.
        flags.delete("gone")
        after = await checks_until_sampled(client, run_checks)
    assert {s["flag"] for s in after.series("rollout_checks_total")} == {"chat"}


@pytest.mark.anyio
async def test_each_app_has_a_private_registry_and_one_sampler_per_rollout(
    flags: Rollout,
) -> None:
    flags.activate("chat")
    async with metrics_client(flags) as one, metrics_client(flags) as two:
        a, b = await scrape(one), await scrape(two)
    assert a.value("rollout_flags") == b.value("rollout_flags") == 1
    assert "rollout_flags" not in prometheus_client.generate_latest().decode()
    assert sampler_for(flags) is sampler_for(flags)


def test_the_sampler_stops_and_restores_the_check_when_its_rollout_closes() -> None:
    flags = Rollout()
    original = flags.active
    sampler = CheckSampler(flags, window=0.005, period=0.01)
    sampler.start()
    eventually(lambda: sampler.windows, what="the sampler swapped the check at least once")
    flags.close()
    eventually(lambda: not sampler.running, what="the sampler stopped with its Rollout")
    assert flags.active == original


def test_the_sampler_stops_and_restores_the_check_when_the_server_loop_stops(
    flags: Rollout,
) -> None:
    """As when uvicorn shuts down: the event loop that served /metrics ends."""
    original = flags.active

    async def one_server_lifetime() -> None:
        async with metrics_client(flags) as client:
            await checks_until_sampled(client, lambda: flags.active("x"), windows=1)

    asyncio.run(one_server_lifetime())
    sampler = sampler_for(flags)
    eventually(lambda: not sampler.running, what="the sampler stopped with the server loop")
    assert flags.active == original


@pytest.mark.parametrize(
    ("window", "period", "message"),
    [
        (0, 1, "window must be a positive number of seconds, got 0"),
        (0.01, -1, "period must be a positive number of seconds, got -1"),
        (True, 1, "window must be a positive number of seconds, got True"),
        (0.5, 0.1, "period must be at least window"),
    ],
)
def test_bad_sampler_settings_are_refused_by_name(
    window: float, period: float, message: str
) -> None:
    with Rollout() as flags, pytest.raises(ValueError, match=message):
        CheckSampler(flags, window=window, period=period)


def test_an_override_begun_during_a_window_does_not_leave_the_counting_wrapper_behind() -> None:
    with Rollout() as flags:
        original = flags.active
        sampler = CheckSampler(flags, window=600, period=600)  # one window, open until stop()
        sampler.start()
        eventually(lambda: flags.active != original, what="the first window opened")
        with flags.override("x", True):  # wraps the counting wrapper
            assert flags.active("x")
            sampler.stop()  # the window ends under the override
            assert flags.active("x")  # the override still answers
        # Both wrappers are gone, whichever ended first: the bare check, at no extra cost.
        assert flags.active == original
        assert not flags.active("x")


@pytest.mark.anyio
async def test_the_quarantine_is_in_the_metrics(flags: Rollout) -> None:
    from rollout.testing import FakeClock

    async with metrics_client(flags) as client:
        assert (await scrape(client)).value("rollout_quarantined") == 0
        with Rollout(clock=FakeClock(system_clock_ms() + 3_600_000)) as ahead:
            ahead.activate_users("chat", [1, 2])
            flags.merge(ahead.export())
        held = await scrape(client)
        flags.drop_quarantined("chat", "user:1")
        after = await scrape(client)
    assert held.value("rollout_quarantined") == 3  # exists, two users
    assert held.families["rollout_quarantined"].type == "gauge"
    assert held.value("rollout_registers_rejected_total") == 4  # and the history event
    assert after.value("rollout_quarantined") == 2
    assert after.value("rollout_quarantine_dropped_total") == 1


def test_openfeature_resolutions_are_counted_like_checks() -> None:
    # The provider answers most resolutions without flags.active (cheaper); the sampler must
    # still see them, or a flag used only through OpenFeature would look never checked (stale).
    from openfeature.evaluation_context import EvaluationContext

    from rollout.openfeature import RolloutProvider

    with Rollout() as flags:
        flags.activate("everyone")
        flags.activate_percentage("half", 50)
        flags.define_group("staff", lambda user: False)
        flags.activate_group("grouped", "staff")
        provider = RolloutProvider(flags, status_interval=None)
        provider.initialize(EvaluationContext())
        sampler = CheckSampler(flags, window=0.02, period=0.04)
        sampler.start()
        try:
            contexts = [EvaluationContext(targeting_key=str(n)) for n in range(50)]

            def counted() -> set[str]:
                for context in contexts:
                    for name in ("everyone", "half", "grouped"):
                        provider.resolve_boolean_details(name, False, context)
                return {name for name, _answer in sampler.totals()}

            eventually(
                lambda: counted() == {"everyone", "half", "grouped"},
                what="every flag resolved through the provider counted",
            )
            assert set(sampler.last_checked()) == {"everyone", "half", "grouped"}
        finally:
            sampler.stop()
            provider.shutdown()
