"""The OpenFeature provider's cost: ``flags.active()`` vs the provider vs the OpenFeature client.

The flags and users of the Checks section (``bench.checks``): ``on`` is on for everybody;
``chat`` is on for 20% of users and three groups, asked for users in none of the groups. Each
check is timed three ways in the same run, and reported as a ratio of ``flags.active()``:

* ``flags.active(name, user)`` with the application's user object;
* ``provider.resolve_boolean_details(name, False, context)``: the provider called directly;
* ``client.get_boolean_value(name, False, context)``: through ``openfeature.api`` (hooks,
  context merging, status checks and all).

The OpenFeature calls build the ``EvaluationContext`` from the user object on every call, as an
application does per request (the peers in ``bench.peers`` do the same); a row shows what that
construction alone costs. Run alone: ``python -m bench.openfeature_bench``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from rollout.openfeature import RolloutProvider

from ._timing import REPEAT as TIMING_REPEAT
from ._timing import ns_per_call, ns_per_item
from .checks import USER_COUNT, USERS, build_rollout, worst_case_user
from .report import Table

__all__ = ["OpenFeatureTimes", "measure_openfeature", "tables"]

DOMAIN = "rollout-openfeature-bench"
#: Repeats of a per-user mean (best kept): fewer than a single call's five, so this section
#: stays under half a minute (one loop of the client over 10,000 users takes 0.2 s).
MEAN_REPEAT = 3


def context_of(user: Any) -> EvaluationContext:
    """What an application writes to ask OpenFeature about one of its users."""
    return EvaluationContext(targeting_key=str(user.id), attributes={"groups": user.groups})


@dataclass(frozen=True)
class Way:
    """Nanoseconds per check, one way of asking."""

    global_ns: float
    user_ns: float  # the fixed worst-case user (outside the 20%, in no group)
    user_mean_ns: float  # mean over USER_COUNT distinct users


@dataclass(frozen=True)
class OpenFeatureTimes:
    active: Way
    provider: Way
    client: Way
    context_ns: float  # building one EvaluationContext from a user object
    worst_user_id: int


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
    try:
        user = worst_case_user(flags, [])
        namespace: dict[str, object] = {
            "flags": flags,
            "provider": provider,
            "client": api.get_client(DOMAIN),
            "context_of": context_of,
            "user": user,
        }
        _say(progress, "flags.active()")
        active = _way('flags.active("on")', 'flags.active("chat", {user})', namespace)
        _say(progress, "the provider, called directly")
        direct = _way(
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
        context_ns = ns_per_call("context_of(user)", namespace)
    finally:
        api.shutdown()
        flags.close()
    return OpenFeatureTimes(active, direct, client, context_ns, user.id)


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
        row("client.get_boolean_value(...)", times.client),
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
        f"{USER_COUNT:,} users, about 20% of them inside (for those the provider runs the "
        "group predicates a second time to tell TARGETING_MATCH from SPLIT).",
        "The OpenFeature rows build the EvaluationContext from the user object inside the "
        "timed call, as an application does; the last row is that construction alone. The "
        "client row is what an application using openfeature.api pays: most of it is the "
        "SDK's own work (context merging, hooks, status checks, details objects).",
        f"Best of {TIMING_REPEAT} repeats of about 0.2 s each ({MEAN_REPEAT} for the means), "
        "all in one run.",
    )
    return [Table("OpenFeature provider", headers, rows, notes)]


def _x(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _say(progress: bool, what: str) -> None:
    if progress:
        print(f"  timing OpenFeature: {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
