"""The OpenFeature provider's cost: ``flags.active()`` vs the provider vs the OpenFeature client.

The flags and users of the Checks section (``bench.checks``): ``on`` is on for everybody;
``chat`` is on for 20% of users and three groups, asked for users in none of the groups. Each
check is timed these ways in the same run, and reported as a ratio of ``flags.active()``:

* ``flags.active(name, user)`` with the application's user object;
* ``provider.resolve_boolean_details(name, False, context)``: the provider called directly,
  with a context built beforehand (the provider's own cost: the issue's target, <= 3x
  ``flags.active()``), and with the context built inside the timed call;
* ``client.get_boolean_value(name, False, context)``: through ``openfeature.api`` (hooks,
  context merging, status checks and all);
* the same through a client of a no-op provider (a constant FlagResolutionDetails): the SDK's
  own floor, which no provider can go under.

The OpenFeature calls other than "context built beforehand" build the ``EvaluationContext``
from the user object on every call, as an application does per request (the peers in
``bench.peers`` do the same); a row shows what that construction alone costs. Run alone:
``python -m bench.openfeature_bench``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from rollout.openfeature import RolloutProvider

from ._timing import REPEAT as TIMING_REPEAT
from ._timing import ns_per_call, ns_per_item
from .checks import USER_COUNT, USERS, build_rollout, worst_case_user
from .report import Table

__all__ = ["OpenFeatureTimes", "measure_openfeature", "tables"]

DOMAIN = "rollout-openfeature-bench"
NOOP_DOMAIN = "noop-openfeature-bench"
Context = EvaluationContext | None
#: The issue's target: the provider's resolution, called directly, costs at most this many
#: times ``flags.active()`` (global and per-user alike).
TARGET_X = 3.0
#: Repeats of a per-user mean (best kept): fewer than a single call's five, so this section
#: stays under half a minute (one loop of the client over 10,000 users takes 0.2 s).
MEAN_REPEAT = 3


def context_of(user: Any) -> EvaluationContext:
    """What an application writes to ask OpenFeature about one of its users."""
    return EvaluationContext(targeting_key=str(user.id), attributes={"groups": user.groups})


class NoopProvider(AbstractProvider):
    """A provider that does nothing: every resolution is a constant, so a client using it
    measures the SDK's own work alone. (Its arguments are not read: it is a no-op.)"""

    def __init__(self) -> None:
        super().__init__()
        self._answer = FlagResolutionDetails(True, reason=Reason.STATIC, variant="on")

    def get_metadata(self) -> Metadata:
        return Metadata(name="noop")

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: Context = None
    ) -> FlagResolutionDetails[bool]:
        del flag_key, default_value, evaluation_context
        return self._answer

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: Context = None
    ) -> FlagResolutionDetails[str]:
        del flag_key, evaluation_context
        return FlagResolutionDetails(default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: Context = None
    ) -> FlagResolutionDetails[int]:
        del flag_key, evaluation_context
        return FlagResolutionDetails(default_value)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: Context = None
    ) -> FlagResolutionDetails[float]:
        del flag_key, evaluation_context
        return FlagResolutionDetails(default_value)

    def resolve_object_details(
        self, flag_key: str, default_value: Any, evaluation_context: Context = None
    ) -> FlagResolutionDetails[Any]:
        del flag_key, evaluation_context
        return FlagResolutionDetails(default_value)


@dataclass(frozen=True)
class Way:
    """Nanoseconds per check, one way of asking."""

    global_ns: float
    user_ns: float  # the fixed worst-case user (outside the 20%, in no group)
    user_mean_ns: float  # mean over USER_COUNT distinct users


@dataclass(frozen=True)
class OpenFeatureTimes:
    active: Way
    provider: Way  # the context built beforehand: the provider's own cost
    provider_building: Way  # the context built inside the call, as an application does
    client: Way
    noop_client: Way  # the SDK's own floor: the client of a provider that does nothing
    context_ns: float  # building one EvaluationContext from a user object
    worst_user_id: int
    #: The provider's ratio to flags.active() in the thread's CPU time: (global, worst case,
    #: mean).
    cpu_x: tuple[float, float, float]


def _way(global_stmt: str, user_call: str, namespace: dict[str, object]) -> Way:
    return Way(
        global_ns=ns_per_call(global_stmt, namespace),
        user_ns=ns_per_call(user_call.format(user="user"), namespace),
        user_mean_ns=ns_per_item(
            user_call.format(user="item"), namespace, USERS, repeat=MEAN_REPEAT
        ),
    )


def measure_openfeature(progress: bool = True) -> OpenFeatureTimes:
    flags = build_rollout()
    provider = RolloutProvider(flags)
    api.set_provider_and_wait(provider, domain=DOMAIN)  # initializes it: views are cached
    api.set_provider_and_wait(NoopProvider(), domain=NOOP_DOMAIN)
    try:
        user = worst_case_user(flags, [])
        contexts = [context_of(item) for item in USERS]
        namespace: dict[str, object] = {
            "flags": flags,
            "provider": provider,
            "client": api.get_client(DOMAIN),
            "noop_client": api.get_client(NOOP_DOMAIN),
            "context_of": context_of,
            "user": user,
            "worst_context": context_of(user),
            "users": USERS,
            "contexts": contexts,
        }
        _say(progress, "flags.active()")
        active = _way('flags.active("on")', 'flags.active("chat", {user})', namespace)
        _say(progress, "the provider, called directly")
        direct = Way(
            global_ns=ns_per_call('provider.resolve_boolean_details("on", False)', namespace),
            user_ns=ns_per_call(
                'provider.resolve_boolean_details("chat", False, worst_context)', namespace
            ),
            # Over the same users' contexts, built beforehand: each loop reads its own list,
            # so neither pays for finding the other's input (a lookup by id would be timed).
            user_mean_ns=ns_per_item(
                'provider.resolve_boolean_details("chat", False, item)',
                namespace,
                contexts,
                repeat=MEAN_REPEAT,
            ),
        )
        _say(progress, "the provider, called directly, building the context")
        building = _way(
            'provider.resolve_boolean_details("on", False)',
            'provider.resolve_boolean_details("chat", False, context_of({user}))',
            namespace,
        )
        _say(progress, "the OpenFeature client")
        client = _way(
            'client.get_boolean_value("on", False)',
            'client.get_boolean_value("chat", False, context_of({user}))',
            namespace,
        )
        _say(progress, "the OpenFeature client of a no-op provider (the SDK's own floor)")
        noop = _way(
            'noop_client.get_boolean_value("on", False)',
            'noop_client.get_boolean_value("chat", False, context_of({user}))',
            namespace,
        )
        context_ns = ns_per_call("context_of(user)", namespace)
        _say(progress, "flags.active() and the provider in thread CPU time")
        clock = time.thread_time
        cpu = {
            stmt: ns_per_call(stmt, namespace, clock=clock)
            for stmt in (
                'flags.active("on")',
                'provider.resolve_boolean_details("on", False)',
                'flags.active("chat", user)',
                'provider.resolve_boolean_details("chat", False, worst_context)',
            )
        }
        # The means in CPU time too: each loop less the empty loop over the same list.
        cpu_mean = {
            name: ns_per_call(f"for item in {items}:\n    {body}", namespace, clock=clock)
            - ns_per_call(f"for item in {items}:\n    pass", namespace, clock=clock)
            for name, items, body in (
                ("active", "users", 'flags.active("chat", item)'),
                ("provider", "contexts", 'provider.resolve_boolean_details("chat", False, item)'),
            )
        }
        cpu_x = (
            cpu['provider.resolve_boolean_details("on", False)'] / cpu['flags.active("on")'],
            cpu['provider.resolve_boolean_details("chat", False, worst_context)']
            / cpu['flags.active("chat", user)'],
            cpu_mean["provider"] / cpu_mean["active"],
        )
    finally:
        api.shutdown()
        flags.close()
    return OpenFeatureTimes(active, direct, building, client, noop, context_ns, user.id, cpu_x)


def tables(progress: bool = True) -> list[Table]:
    times = measure_openfeature(progress)
    base = times.active

    def row(label: str, way: Way) -> list[str]:
        return [
            label,
            f"{way.global_ns:,.0f}",
            _x(way.global_ns / base.global_ns),
            f"{way.user_ns:,.0f}",
            _x(way.user_ns / base.user_ns),
            f"{way.user_mean_ns:,.0f}",
            _x(way.user_mean_ns / base.user_mean_ns),
        ]

    rows = [
        row("flags.active(name, user)", times.active),
        row("provider.resolve_boolean_details(...)", times.provider),
        row("  the same, building the context in the call", times.provider_building),
        row("client.get_boolean_value(...)", times.client),
        row("  the SDK's own floor: a no-op provider's client", times.noop_client),
        ["EvaluationContext(...) alone", "", "", f"{times.context_ns:,.0f}", "", "", ""],
    ]
    headers = [
        "how",
        'global "on", ns',
        "x active",
        f"per-user worst (user {times.worst_user_id}), ns",
        "x active",
        f"per-user mean of {USER_COUNT:,}, ns",
        "x active",
    ]
    notes = (
        'Global: flags.active("on") and the same flag through OpenFeature with no context. '
        "Per-user: the Checks section's 20% flag with 3 groups; the worst-case user is outside "
        "the 20% and in no group (every rule runs; reason SPLIT); the mean runs over "
        f"{USER_COUNT:,} users, about 20% of them inside.",
        "provider.resolve_boolean_details is given a context built beforehand (the provider's "
        "own cost); the other OpenFeature rows build the EvaluationContext from the user "
        "object inside the timed call, as an application does; the last row is that "
        "construction alone. The client row is what an application using openfeature.api "
        "pays: most of it is the SDK's own work (context merging, hooks, status checks, "
        "details objects), which the no-op provider's client (a constant resolution) shows.",
        f"Best of {TIMING_REPEAT} repeats of about 0.2 s each ({MEAN_REPEAT} for the means), "
        "all in one run.",
    )
    return [Table("OpenFeature provider", headers, rows, notes), targets(times)]


def targets(times: OpenFeatureTimes) -> Table:
    """The issue's target for the provider (PASS or MISS), and the SDK's floor beside it."""
    base, ours, floor, client = times.active, times.provider, times.noop_client, times.client
    rows = []
    pickers: list[tuple[str, Callable[[Way], float]]] = [
        ("global", attrgetter("global_ns")),
        ("per-user, worst case", attrgetter("user_ns")),
        ("per-user, mean", attrgetter("user_mean_ns")),
    ]
    cpu = {
        "global": _x(times.cpu_x[0]),
        "per-user, worst case": _x(times.cpu_x[1]),
        "per-user, mean": _x(times.cpu_x[2]),
    }
    for what, pick in pickers:
        ratio = pick(ours) / pick(base)
        rows.append(
            [
                f"provider resolution, {what} <= {TARGET_X:g}x flags.active()",
                _x(ratio),
                "PASS" if ratio <= TARGET_X else "MISS",
                cpu.get(what, ""),
                f"{pick(floor):,.0f} ns ({_x(pick(floor) / pick(base))})",
                f"{(pick(client) - pick(floor)) / pick(base):.1f}x",
            ]
        )
    headers = [
        "target",
        "measured",
        "result",
        "CPU time, x",
        "SDK's own floor",
        "client less floor, x active",
    ]
    notes = (
        "Measured: wall-clock time, the ratio the result is judged on. CPU time: the same "
        "ratio in the thread's CPU time (time.thread_time), which the other processes of a "
        "loaded machine disturb far less (the mean: each loop less the empty loop, best of "
        f"{TIMING_REPEAT}). "
        "SDK's own floor: client.get_boolean_value through a provider that returns a constant "
        "(the same call as the client row, context included); client less floor: what our "
        "provider adds to a client call, in flags.active() units.",
    )
    return Table("OpenFeature targets", headers, rows, notes)


def _x(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _say(progress: bool, what: str) -> None:
    if progress:
        print(f"  timing OpenFeature: {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
