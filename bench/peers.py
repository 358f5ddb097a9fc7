"""Peer feature-flag SDKs, set up fully offline, for the comparison benchmark.

For every peer library this module builds three check callables:

* ``global_check()``: a flag that is on for everybody;
* ``percent_check(user)``: a flag that is on for 20% of users (percentage rollout on the user
  id) and nothing else;
* ``user_check(user)``: a flag that is on for 20% of users and also has three group rules
  (``admins``, ``beta``, ``staff``), asked for a plain user object with ``.id: int`` and
  ``.groups: tuple[str, ...]``: one attribute condition per group, as rollout has one predicate
  per group.

The SDK-specific user/context (LaunchDarkly ``Context``, GrowthBook attributes, Flagsmith
traits, Unleash context dict, OpenFeature ``EvaluationContext``) is built inside
``user_check`` from the user object on every call, the way an application would do it
per request; rollout takes the user object directly, so this keeps the comparison fair.

Everything is evaluated from local data: no SDK makes a network call, and events,
analytics, metrics, registration and polling are off. Data files go to a temporary
directory per peer, removed by ``close()``.

Run ``python bench/peers.py`` to print nanoseconds per call for every peer.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import shutil
import tempfile
import threading
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GLOBAL_FLAG = "global-on"
USER_FLAG = "per-user"
PERCENT_FLAG = "per-user-percentage"
RULE_GROUPS = ("admins", "beta", "staff")  # one rule / segment / strategy each
PERCENT = 20

_SDK_LOGGERS = (
    "growthbook",
    "flagsmith",
    "flag_engine",
    "UnleashClient",
    "apscheduler",
    "ldclient",
    "openfeature",
)


@dataclass(frozen=True)
class PeerChecks:
    library: str  # e.g. "growthbook 4.0.0"
    global_check: Callable[[], bool]  # the flag that is on for everybody
    user_check: Callable[[Any], bool]  # the 20% + 3 groups flag, for a user object
    percent_check: Callable[[Any], bool]  # the 20% flag without groups, for a user object
    close: Callable[[], None]


@dataclass(frozen=True)
class _User:
    """Stand-in for the application's user object (what the benchmark passes)."""

    id: int
    groups: tuple[str, ...]


def _label(distribution: str) -> str:
    return f"{distribution} {importlib.metadata.version(distribution)}"


def _delimited(groups: tuple[str, ...]) -> str:
    """Groups as ``",a,b,"`` for SDKs whose attributes are scalars (Flagsmith, Unleash).

    A rule for group ``g`` is then "contains ``,g,``", which matches whole names only.
    """
    return "," + ",".join(groups) + ","


def _temp_dir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"rollout-peer-{name}-"))


# --------------------------------------------------------------------------- GrowthBook


def _growthbook() -> PeerChecks:
    from growthbook import GrowthBook

    features: dict[str, Any] = {
        GLOBAL_FLAG: {"defaultValue": True},
        USER_FLAG: {
            "defaultValue": False,
            "rules": [
                *(
                    {"id": f"group-{g}", "condition": {"groups": {"$in": [g]}}, "force": True}
                    for g in RULE_GROUPS
                ),
                {
                    "id": "rollout",
                    "force": True,
                    "coverage": PERCENT / 100,
                    "hashAttribute": "id",
                },
            ],
        },
        PERCENT_FLAG: {
            "defaultValue": False,
            "rules": [
                {"id": "rollout", "force": True, "coverage": PERCENT / 100, "hashAttribute": "id"}
            ],
        },
    }
    # No api_host/client_key: the features dict is all it has, so it never fetches.
    # The global check uses its own instance with no attributes at all.
    gb_global: Any = GrowthBook(features=features)
    # One long-lived instance whose attributes are replaced per call. This is the
    # cheapest public path of the synchronous class (GrowthBook's docs create a new
    # instance per request, which costs more); GrowthBookClient, the multi-user
    # client, is asyncio-only.
    gb: Any = GrowthBook(features=features)

    def global_check() -> bool:
        return gb_global.is_on(GLOBAL_FLAG) is True

    def user_check(user: Any) -> bool:
        gb.set_attributes({"id": str(user.id), "groups": list(user.groups)})
        return gb.is_on(USER_FLAG) is True

    def percent_check(user: Any) -> bool:
        gb.set_attributes({"id": str(user.id), "groups": list(user.groups)})
        return gb.is_on(PERCENT_FLAG) is True

    def close() -> None:
        gb.destroy()
        gb_global.destroy()

    return PeerChecks(_label("growthbook"), global_check, user_check, percent_check, close)


# --------------------------------------------------------------------------- Flagsmith


def _flagsmith_feature_state(feature_id: int, name: str, enabled: bool) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "feature": {"id": feature_id, "name": name},
        "featurestate_uuid": f"00000000-0000-4000-8000-{feature_id:012d}",
        "feature_state_value": None,
        "multivariate_feature_state_values": [],
    }


def _flagsmith_segment(
    segment_id: int,
    name: str,
    condition: dict[str, Any],
    priority: int,
    feature: tuple[int, str] = (2, USER_FLAG),
) -> dict[str, Any]:
    override = _flagsmith_feature_state(*feature, True)
    override["featurestate_uuid"] = f"00000000-0000-4000-8000-{100 + segment_id:012d}"
    override["feature_segment"] = {"priority": priority}
    return {
        "id": segment_id,
        "name": name,
        "rules": [{"type": "ALL", "rules": [], "conditions": [condition]}],
        "feature_states": [override],
    }


def _flagsmith() -> PeerChecks:
    from flagsmith import Flagsmith
    from flagsmith.offline_handlers import LocalFileHandler

    segments = [
        _flagsmith_segment(
            i + 1,
            f"group-{g}",
            {"operator": "CONTAINS", "property_": "groups", "value": f",{g},"},
            i,
        )
        for i, g in enumerate(RULE_GROUPS)
    ]
    # Blank property: PERCENTAGE_SPLIT hashes the identity key (i.e. the user id).
    segments.append(
        _flagsmith_segment(
            len(RULE_GROUPS) + 1,
            "rollout",
            {"operator": "PERCENTAGE_SPLIT", "property_": "", "value": str(PERCENT)},
            len(RULE_GROUPS),
        )
    )
    segments.append(
        _flagsmith_segment(
            len(RULE_GROUPS) + 2,
            "rollout-only",
            {"operator": "PERCENTAGE_SPLIT", "property_": "", "value": str(PERCENT)},
            0,
            feature=(3, PERCENT_FLAG),
        )
    )
    document = {
        "api_key": "offline-bench",
        "name": "bench",
        "feature_states": [
            _flagsmith_feature_state(1, GLOBAL_FLAG, True),
            _flagsmith_feature_state(2, USER_FLAG, False),
            _flagsmith_feature_state(3, PERCENT_FLAG, False),
        ],
        "identity_overrides": [],
        "project": {"segments": segments},
    }
    tmp = _temp_dir("flagsmith")
    try:
        path = tmp / "environment.json"
        path.write_text(json.dumps(document))
        # offline_mode: no environment key, no HTTP session, no polling thread, no
        # analytics; flags come from the environment document only.
        flagsmith: Any = Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(str(path)))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def global_check() -> bool:
        return flagsmith.get_environment_flags().is_feature_enabled(GLOBAL_FLAG) is True

    def user_check(user: Any) -> bool:
        flags = flagsmith.get_identity_flags(
            str(user.id), traits={"groups": _delimited(user.groups)}
        )
        return flags.is_feature_enabled(USER_FLAG) is True

    def percent_check(user: Any) -> bool:
        flags = flagsmith.get_identity_flags(
            str(user.id), traits={"groups": _delimited(user.groups)}
        )
        return flags.is_feature_enabled(PERCENT_FLAG) is True

    def close() -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    return PeerChecks(_label("flagsmith"), global_check, user_check, percent_check, close)


# --------------------------------------------------------------------------- Unleash


def _unleash() -> PeerChecks:
    from UnleashClient.cache import FileCache

    # Same class as ``UnleashClient.UnleashClient``; that re-export has no __all__, which
    # mypy --strict rejects, so import it from the module that defines it.
    from UnleashClient.clients.unleash_client import UnleashClient

    group_strategies = [
        {
            "name": "default",
            "parameters": {},
            "constraints": [
                {
                    "contextName": "groups",
                    "operator": "STR_CONTAINS",
                    "values": [f",{g},"],
                    "inverted": False,
                    "caseInsensitive": False,
                }
            ],
        }
        for g in RULE_GROUPS
    ]
    rollout_strategy = {
        "name": "flexibleRollout",
        "parameters": {"rollout": str(PERCENT), "stickiness": "userId", "groupId": USER_FLAG},
        "constraints": [],
    }
    features = {
        "version": 1,
        "features": [
            {
                "name": GLOBAL_FLAG,
                "enabled": True,
                "strategies": [{"name": "default", "parameters": {}}],
            },
            {
                "name": USER_FLAG,
                "enabled": True,
                "strategies": [*group_strategies, rollout_strategy],
            },
            {
                "name": PERCENT_FLAG,
                "enabled": True,
                "strategies": [
                    {
                        **rollout_strategy,
                        "parameters": {
                            "rollout": str(PERCENT),
                            "stickiness": "userId",
                            "groupId": PERCENT_FLAG,
                        },
                    }
                ],
            },
        ],
    }
    tmp = _temp_dir("unleash")
    try:
        cache: Any = FileCache("rollout-bench", directory=str(tmp))
        cache.bootstrap_from_dict(features)
        # The URL is never contacted: registration and metrics are off, and
        # initialize_client(fetch_toggles=False) installs the OfflineConnector, which
        # only re-reads the bootstrapped cache (hourly here) instead of polling.
        client: Any = UnleashClient(
            url="http://127.0.0.1:9/api",
            app_name="rollout-bench",
            refresh_interval=3600,
            disable_metrics=True,
            disable_registration=True,
            cache=cache,
        )
        client.initialize_client(fetch_toggles=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def global_check() -> bool:
        return client.is_enabled(GLOBAL_FLAG) is True

    def user_check(user: Any) -> bool:
        context = {"userId": str(user.id), "groups": _delimited(user.groups)}
        return client.is_enabled(USER_FLAG, context) is True

    def percent_check(user: Any) -> bool:
        context = {"userId": str(user.id), "groups": _delimited(user.groups)}
        return client.is_enabled(PERCENT_FLAG, context) is True

    def close() -> None:
        client.destroy()
        shutil.rmtree(tmp, ignore_errors=True)

    return PeerChecks(_label("UnleashClient"), global_check, user_check, percent_check, close)


# --------------------------------------------------------------------------- LaunchDarkly


def _launchdarkly() -> PeerChecks:
    from ldclient import Context, LDClient
    from ldclient.config import Config
    from ldclient.integrations import Files

    flags = {
        GLOBAL_FLAG: {
            "key": GLOBAL_FLAG,
            "version": 1,
            "on": True,
            "variations": [False, True],
            "offVariation": 0,
            "fallthrough": {"variation": 1},
            "targets": [],
            "rules": [],
            "prerequisites": [],
            "salt": GLOBAL_FLAG,
        },
        USER_FLAG: {
            "key": USER_FLAG,
            "version": 1,
            "on": True,
            "variations": [False, True],
            "offVariation": 0,
            "targets": [],
            "rules": [
                {
                    "id": f"group-{g}",
                    "clauses": [
                        {"attribute": "groups", "op": "in", "values": [g], "negate": False}
                    ],
                    "variation": 1,
                }
                for g in RULE_GROUPS
            ],
            "fallthrough": {
                "rollout": {
                    "variations": [
                        {"variation": 1, "weight": PERCENT * 1000},
                        {"variation": 0, "weight": (100 - PERCENT) * 1000},
                    ]
                }
            },
            "prerequisites": [],
            "salt": USER_FLAG,
        },
    }
    # The percentage flag: the same flag without its group rules.
    flags[PERCENT_FLAG] = {
        **flags[USER_FLAG],
        "key": PERCENT_FLAG,
        "rules": [],
        "salt": PERCENT_FLAG,
    }
    tmp = _temp_dir("launchdarkly")
    try:
        path = tmp / "flags.json"
        path.write_text(json.dumps({"flags": flags}))
        # offline=True would make every variation() return the default, ignoring the
        # file, so instead: the file data source replaces streaming/polling, and
        # send_events=False (no event processor thread) + diagnostic_opt_out.
        config = Config(
            sdk_key="offline-bench",
            update_processor_class=Files.new_data_source(paths=[str(path)]),
            send_events=False,
            diagnostic_opt_out=True,
        )
        client: Any = LDClient(config, start_wait=5)
        if not client.is_initialized():
            client.close()
            raise RuntimeError("file data source did not initialize")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    # LaunchDarkly cannot evaluate without a context that has a key, so the global
    # check passes the minimal one: an anonymous context built once, up front.
    anonymous = Context.builder("anonymous").anonymous(True).build()

    def global_check() -> bool:
        return client.variation(GLOBAL_FLAG, anonymous, False) is True

    def user_check(user: Any) -> bool:
        context = Context.builder(str(user.id)).set("groups", list(user.groups)).build()
        return client.variation(USER_FLAG, context, False) is True

    def percent_check(user: Any) -> bool:
        context = Context.builder(str(user.id)).set("groups", list(user.groups)).build()
        return client.variation(PERCENT_FLAG, context, False) is True

    def close() -> None:
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)

    return PeerChecks(
        _label("launchdarkly-server-sdk"), global_check, user_check, percent_check, close
    )


# --------------------------------------------------------------------------- OpenFeature


def _openfeature() -> PeerChecks:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import FlagResolutionDetails, Reason
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

    # InMemoryProvider has no targeting of its own; the flag's context_evaluator does
    # it, so for OpenFeature the timing is the OpenFeature client/provider overhead
    # plus this small hand-written evaluator (3 group rules, then a SHA-1 bucket of
    # the targeting key, LaunchDarkly-style, over 100000 buckets).
    def evaluate(flag: Any, context: Any) -> Any:
        groups = context.attributes.get("groups") or ()
        for group in RULE_GROUPS:
            if group in groups:
                return FlagResolutionDetails(
                    value=flag.variants["on"], variant="on", reason=Reason.TARGETING_MATCH
                )
        return evaluate_percentage(flag, context)

    def evaluate_percentage(flag: Any, context: Any) -> Any:
        key = context.targeting_key
        if key is not None:
            digest = hashlib.sha1(f"{USER_FLAG}.{key}".encode()).digest()
            if int.from_bytes(digest[:8], "big") % 100_000 < PERCENT * 1000:
                return FlagResolutionDetails(
                    value=flag.variants["on"], variant="on", reason=Reason.SPLIT
                )
        return FlagResolutionDetails(
            value=flag.variants["off"], variant="off", reason=Reason.DEFAULT
        )

    provider = InMemoryProvider(
        {
            GLOBAL_FLAG: InMemoryFlag("on", {"on": True, "off": False}),
            USER_FLAG: InMemoryFlag("off", {"on": True, "off": False}, context_evaluator=evaluate),
            PERCENT_FLAG: InMemoryFlag(
                "off", {"on": True, "off": False}, context_evaluator=evaluate_percentage
            ),
        }
    )
    domain = "rollout-bench"
    api.set_provider_and_wait(provider, domain=domain)
    client: Any = api.get_client(domain=domain)

    def global_check() -> bool:
        return client.get_boolean_value(GLOBAL_FLAG, False) is True

    def user_check(user: Any) -> bool:
        context = EvaluationContext(
            targeting_key=str(user.id), attributes={"groups": list(user.groups)}
        )
        return client.get_boolean_value(USER_FLAG, False, context) is True

    def percent_check(user: Any) -> bool:
        context = EvaluationContext(
            targeting_key=str(user.id), attributes={"groups": list(user.groups)}
        )
        return client.get_boolean_value(PERCENT_FLAG, False, context) is True

    def close() -> None:
        api.shutdown()

    return PeerChecks(_label("openfeature-sdk"), global_check, user_check, percent_check, close)


# --------------------------------------------------------------------------- build_all

_BUILDERS: tuple[tuple[str, Callable[[], PeerChecks]], ...] = (
    ("growthbook", _growthbook),
    ("flagsmith", _flagsmith),
    ("UnleashClient", _unleash),
    ("launchdarkly-server-sdk", _launchdarkly),
    ("openfeature-sdk", _openfeature),
)


def _self_check(peer: PeerChecks) -> str | None:
    """None if both checks give the right answers, else what is wrong."""
    if peer.global_check() is not True:
        return "global flag is not on"
    outsiders = [_User(i, ("customers",)) for i in range(1, 2001)]
    answers = [peer.user_check(u) for u in outsiders]
    share = sum(answers) / len(answers)
    if not 0.10 <= share <= 0.30:
        return f"per-user flag on for {share:.1%} of users 1..2000, expected about {PERCENT}%"
    percent_share = sum(peer.percent_check(u) for u in outsiders) / len(outsiders)
    if not 0.10 <= percent_share <= 0.30:
        return f"percentage flag on for {percent_share:.1%} of users 1..2000, expected {PERCENT}%"
    # Someone outside the 20%, so only the group rule can turn the flag on.
    outside_id = next(u.id for u, on in zip(outsiders, answers, strict=True) if not on)
    for group in RULE_GROUPS:
        if not peer.user_check(_User(outside_id, ("customers", group))):
            return f"per-user flag is off for user {outside_id} in group {group!r}"
    return None


def build_all(only: tuple[str, ...] = ()) -> tuple[list[PeerChecks], list[str]]:
    """Every peer (or those named in ``only``) that could be set up offline, and a list of
    'library: reason' for those that could not."""
    for name in _SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    peers: list[PeerChecks] = []
    failures: list[str] = []
    for name, builder in _BUILDERS:
        if only and name not in only:
            continue
        try:
            peer = builder()
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        try:
            problem = _self_check(peer)
        except Exception as exc:
            problem = f"self-check raised {type(exc).__name__}: {exc}"
        if problem is None:
            peers.append(peer)
        else:
            failures.append(f"{peer.library}: {problem}")
            peer.close()
    return peers, failures


def _ns_per_call(fn: Callable[[], object]) -> float:
    """Best of 5 repeats, each of about 0.2 s."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # the first count whose run takes >= 0.2 s
    return min(timer.repeat(repeat=5, number=number)) / number * 1e9


def main() -> None:
    peers, failures = build_all()
    user = _User(id=12345, groups=("customers",))
    try:
        print(f"{'library':<32} {'global ns':>10} {'percent ns':>11} {'per_user ns':>12}")
        for peer in peers:
            global_ns = _ns_per_call(peer.global_check)
            percent_ns = _ns_per_call(functools.partial(peer.percent_check, user))
            user_ns = _ns_per_call(functools.partial(peer.user_check, user))
            print(f"{peer.library:<32} {global_ns:>10.0f} {percent_ns:>11.0f} {user_ns:>12.0f}")
    finally:
        for peer in peers:
            peer.close()
    if failures:
        print("\ncould not set up:")
        for failure in failures:
            print(f"  {failure}")
    lingering = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if lingering:
        print(f"\nnon-daemon threads still alive: {', '.join(lingering)}")


if __name__ == "__main__":
    main()
