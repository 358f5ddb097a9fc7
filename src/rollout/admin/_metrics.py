"""``GET /metrics``: the Rollout's counters in the Prometheus text format.

Every app gets its own :class:`~prometheus_client.CollectorRegistry` (never the process-wide
default one, so two apps, or an app inside a service that has its own metrics, never clash), with
one collector that reads ``flags.stats()`` at scrape time: nothing is counted twice and nothing
runs between scrapes.

Exposed:

* ``rollout_info{node,node_name,store}``: 1, naming this replica;
* ``rollout_flags``: flags known (existing) in this replica;
* ``rollout_quarantined``: registers held in the quarantine (docs/operations.md, "Quarantine");
* ``rollout_writes_total``, ``rollout_merges_total``, ``rollout_registers_rejected_total``,
  ``rollout_group_errors_total``, ``rollout_rule_errors_total``,
  ``rollout_subscriber_errors_total``,
  ``rollout_quarantine_{accepted,dropped,superseded,overflow}_total``,
  ``rollout_clock_steps_back_total``: ``stats()``'s counters;
* ``rollout_sync_*{transport}``: the replication transport's counters (``peer`` or ``redis``):
  ``_total`` counters such as ``rollout_sync_deltas_sent_total`` or
  ``rollout_sync_reconnects_total``, gauges ``rollout_sync_peers_connected``,
  ``rollout_sync_members``, ``rollout_sync_connected``, ``rollout_sync_clock_skew`` and
  ``rollout_sync_last_sync_timestamp_seconds{peer}``;
* ``rollout_clock_*{transport}``, the verdict on this node's clock by its peers (see
  rollout.sync._clock): ``rollout_clock_writable`` (0 while local writes are refused),
  ``rollout_clock_state{state}`` (1 for the current one of ok, outlier, no_majority,
  unconfirmed), ``rollout_clock_voters`` / ``rollout_clock_agreeing`` (nodes heard, this one
  included, and those within half of max_offset of it) and
  ``rollout_clock_peer_offset_seconds{peer}``
  (each connected peer's clock minus this node's);
* ``rollout_ruby_*``: the Ruby gem mirror's counters, when ``ruby_compat`` is on;
* ``rollout_checks_total{flag,result}`` (``result`` is ``on`` or ``off``): checks of flags that
  exist, *estimated* from short counting windows (see rollout.admin._sampling for why and what it
  misses); ``rollout_unknown_flag_checks_total``: checks of names that are no flag, all in one
  series, so at most two ``flag`` series per existing flag whatever callers ask for; and
  ``rollout_check_sampling_windows_total`` / ``rollout_check_sampling_duty_cycle_ratio`` to judge
  them;
* ``rollout_flag_last_checked_timestamp_seconds{flag}``: when this process last saw the flag
  checked (in a window, or exactly through its API's ``check``): stale-flag hunting;
* ``rollout_code_timeouts_total``: this app's reads that run the application's code (check,
  explain, evaluate, OFREP) answered 503 at their deadline (``code_timeout``), and
  ``rollout_code_threads_overdue``: the threads still running such code for a request answered
  so (see rollout.admin._code_threads).

Names follow Prometheus' conventions: a counter ends in ``_total``, a 0-to-1 gauge in ``_ratio``,
a time in ``_seconds`` (a ``*_ms`` stats value is converted), a Unix time in
``_timestamp_seconds``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._code_threads import CodeDeadline
from ._sampling import DEFAULT_PERIOD, DEFAULT_WINDOW, CheckSampler, sampler_for, stop_sampler

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .._client.rollout import Rollout

__all__ = ["RolloutCollector", "metrics_registry", "metrics_routes", "stop_sampling"]

#: stats() counters -> help text.
_COUNTERS = {
    "writes": "Writes made through this replica.",
    "merges": "Merges of changes from elsewhere (peers, Redis, imports) that changed flags.",
    "registers_rejected": "Registers from elsewhere refused (too far in the future, malformed).",
    "group_errors": "Group predicates that raised during a check (counted as no).",
    "rule_errors": "Targeting rules that failed during a check (the default answered).",
    "subscriber_errors": "Subscriber callbacks that raised.",
    "quarantine_accepted": "Quarantined registers accepted (written again, stamped now).",
    "quarantine_dropped": "Quarantined registers dropped by an operator.",
    "quarantine_superseded": "Quarantined registers overwritten by a later local write.",
    "quarantine_overflow": "Registers refused but not held: the quarantine was full.",
    "clock_steps_back": "Times the wall clock was found far behind this node's own timestamps.",
    "store_reloads": "Times the whole store was read again because another process wrote to it.",
    "peer_commits_failed": "Peers' changes applied here whose commit to the store failed "
    "(retried at the next commit).",
}

#: Values of stats()["sync"] that are levels, not counts.
_SYNC_GAUGES = {
    "peers_connected": "Peer connections open now.",
    "members": "Cluster members known, this node excluded.",
    "connected": "1 while the Redis subscriber (or PostgreSQL listener) is connected.",
    "version_seen": "The last Redis (or PostgreSQL) change version this replica has seen.",
}
#: Values of stats()["ruby"] that are levels (0/1), not counts.
_RUBY_GAUGES = {"keyspace_notifications": "1 when Redis keyspace notifications are used."}


class RolloutCollector(Collector):
    """Reads ``flags.stats()`` and the check sampler at every scrape."""

    def __init__(
        self, flags: Rollout, sampler: CheckSampler, code: CodeDeadline | None = None
    ) -> None:
        self._flags = flags
        self._sampler = sampler
        self._code = code

    def collect(self) -> Iterator[Metric]:
        stats = self._flags.stats()
        info = InfoMetricFamily("rollout", "This replica.")
        info.add_metric(
            [],
            {"node": stats["node"], "node_name": self._flags.node_name, "store": stats["store"]},
        )
        yield info
        yield GaugeMetricFamily("rollout_flags", "Flags known to this replica.", stats["flags"])
        yield GaugeMetricFamily(
            "rollout_quarantined",
            "Registers held in the quarantine (stamped too far ahead; `rollout quarantine`).",
            stats["quarantined"],
        )
        yield GaugeMetricFamily(
            "rollout_deferred",
            "Registers of the store stamped ahead of this clock, kept aside until the peers "
            "have judged it.",
            stats["deferred"],
        )
        yield GaugeMetricFamily(
            "rollout_uncommitted",
            "Registers from peers applied here and not yet stored (a failed commit, retried).",
            stats["uncommitted"],
        )
        for key, help_text in _COUNTERS.items():
            yield CounterMetricFamily(f"rollout_{key}", help_text, stats[key])
        yield from self._checks()
        if self._code is not None:
            yield CounterMetricFamily(
                "rollout_code_timeouts",
                "Reads that run the application's code (a group's predicate, a rule) answered "
                "503 at their deadline (code_timeout), or before a thread to run it was free.",
                self._code.timeouts,
            )
            yield GaugeMetricFamily(
                "rollout_code_threads_overdue",
                "Threads still running the application's code for a request already answered "
                "at its deadline (each holds one of the threads such reads may take).",
                self._code.overdue,
            )
        if stats["sync"] is not None:
            yield from _sync_metrics(stats["sync"])
        if stats["ruby"] is not None:
            yield from _numbers("rollout_ruby", stats["ruby"], _RUBY_GAUGES, {})

    def _checks(self) -> Iterator[Metric]:
        checks = CounterMetricFamily(
            "rollout_checks",
            "Checks (flags.active) by flag and result, estimated from sampling windows.",
            labels=["flag", "result"],
        )
        for (flag, answer), count in sorted(self._sampler.totals().items()):
            # Whole numbers: the estimate's fractions are noise, not information.
            checks.add_metric([flag, "on" if answer else "off"], round(count))
        yield checks
        last = GaugeMetricFamily(
            "rollout_flag_last_checked_timestamp_seconds",
            "Unix time this process last saw each flag checked (a sampling window or a check "
            "through its API); flags never seen checked have no series.",
            labels=["flag"],
        )
        for flag, when in sorted(self._sampler.last_checked().items()):
            if self._flags.exists(flag):  # deleted since: its series ends
                last.add_metric([flag], when)
        yield last
        yield CounterMetricFamily(
            "rollout_unknown_flag_checks",
            "Checks of names that are no flag (typos, names built at run time), estimated like "
            "rollout_checks_total; not labelled by name, so they cannot grow the series.",
            round(self._sampler.unknown),
        )
        yield CounterMetricFamily(
            "rollout_check_sampling_windows",
            "Check counting windows completed (0: the estimate is not running).",
            self._sampler.windows,
        )
        yield GaugeMetricFamily(
            "rollout_check_sampling_duty_cycle_ratio",
            "Share of the time checks are counted (window / period).",
            self._sampler.duty_cycle,
        )


def _sync_metrics(sync: Mapping[str, Any]) -> Iterator[Metric]:
    labels = {"transport": str(sync.get("transport", ""))}
    yield from _numbers("rollout_sync", sync, _SYNC_GAUGES, labels)
    if "clock_skew" in sync:
        skew = GaugeMetricFamily(
            "rollout_sync_clock_skew",
            "1 while local writes are refused for this node's clock (see rollout_clock_state).",
            labels=list(labels),
        )
        skew.add_metric(list(labels.values()), 0 if sync["clock_skew"] is None else 1)
        yield skew
    clock = sync.get("clock")
    if isinstance(clock, Mapping):
        yield from _clock_metrics(clock, labels)
    last_sync = sync.get("last_sync")
    if isinstance(last_sync, Mapping):
        seen = GaugeMetricFamily(
            "rollout_sync_last_sync_timestamp_seconds",
            "Unix time of the last completed exchange with each peer.",
            labels=[*labels, "peer"],
        )
        for peer, when in sorted(last_sync.items()):
            if when is not None:
                seen.add_metric([*labels.values(), str(peer)], float(when))
        yield seen


_CLOCK_STATES = ("ok", "outlier", "no_majority", "unconfirmed")


def _clock_metrics(clock: Mapping[str, Any], labels: Mapping[str, str]) -> Iterator[Metric]:
    names, values = list(labels), list(labels.values())
    writable = GaugeMetricFamily(
        "rollout_clock_writable",
        "1 while this node's clock is accepted by its peers and local writes go through.",
        labels=names,
    )
    writable.add_metric(values, 1 if clock["writable"] else 0)
    yield writable
    state = GaugeMetricFamily(
        "rollout_clock_state",
        "1 for the verdict on this node's clock (ok, outlier, no_majority, unconfirmed).",
        labels=[*names, "state"],
    )
    for name in _CLOCK_STATES:
        state.add_metric([*values, name], 1 if clock["state"] == name else 0)
    yield state
    for key, help_text in (
        ("voters", "Nodes whose clocks were compared, this one included."),
        ("agreeing", "Nodes within half of max_offset of this node's clock, this one included."),
    ):
        gauge = GaugeMetricFamily(f"rollout_clock_{key}", help_text, labels=names)
        gauge.add_metric(values, float(clock[key]))
        yield gauge
    offsets = GaugeMetricFamily(
        "rollout_clock_peer_offset_seconds",
        "Each connected peer's clock minus this node's (one-way network delay included).",
        labels=[*names, "peer"],
    )
    for peer, offset_ms in sorted(clock["offsets_ms"].items()):
        offsets.add_metric([*values, str(peer)], offset_ms / 1000)
    yield offsets


def _numbers(
    prefix: str, values: Mapping[str, Any], gauges: Mapping[str, str], labels: Mapping[str, str]
) -> Iterator[Metric]:
    """Every number in ``values``: a gauge when named in ``gauges``, else a ``_total`` counter.

    Counters a transport adds later show up without a change here.
    """
    for key, value in sorted(values.items()):
        if not isinstance(value, int | float):  # bools are ints: connected -> 0/1
            continue
        number = float(value)
        name = key
        if key.endswith("_ms"):  # Prometheus' unit is the second
            name, number = f"{key.removesuffix('_ms')}_seconds", number / 1000
        metric: CounterMetricFamily | GaugeMetricFamily
        if key in gauges:
            metric = GaugeMetricFamily(f"{prefix}_{name}", gauges[key], labels=list(labels))
        else:
            help_text = f"{name.replace('_', ' ').capitalize()} (stats counter)."
            metric = CounterMetricFamily(f"{prefix}_{name}", help_text, labels=list(labels))
        metric.add_metric(list(labels.values()), number)
        yield metric


def metrics_registry(
    flags: Rollout, sampler: CheckSampler, code: CodeDeadline | None = None
) -> CollectorRegistry:
    """A private registry with the Rollout's collector (one per app)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RolloutCollector(flags, sampler, code))
    return registry


def metrics_routes(
    flags: Rollout,
    *,
    window: float = DEFAULT_WINDOW,
    period: float = DEFAULT_PERIOD,
    code: CodeDeadline | None = None,
) -> list[BaseRoute]:
    """``GET /metrics``. The first scrape starts the check sampler, which stops when the server's
    event loop does (see rollout.admin._sampling). ``code``: the app's deadline of reads that
    run the application's code, whose time-outs are counted.

    ``window`` and ``period`` tune the sampler; the first app made for a Rollout decides them.
    """
    sampler = sampler_for(flags, window=window, period=period)
    registry = metrics_registry(flags, sampler, code)

    async def metrics(_request: Request) -> Response:
        # Started by a scrape rather than at import or app creation: a service that mounts the
        # app and is never scraped never runs the sampler thread. It ends with this event loop.
        sampler.start(asyncio.get_running_loop())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"], name="metrics")]


def stop_sampling(flags: Rollout) -> None:
    """Stop the Rollout's check sampler, if any, and put the original check back."""
    stop_sampler(flags)
