"""The provider's resolutions read like a ``FlagResolutionDetails`` built with every field.

A targeted boolean resolution builds its flag metadata when ``flag_metadata`` is first read
(openfeature._details): whoever reads it, directly or through the OpenFeature client, gets the
values it got when the metadata was built per resolution; whoever does not, never builds it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason

from rollout import Rollout
from rollout.openfeature import RolloutProvider
from rollout.openfeature._flag import FlagView

DOMAIN = "test-details"


@pytest.fixture
def flags() -> Iterator[Rollout]:
    with Rollout() as flags:
        flags.define_group("pro", lambda user: getattr(user, "plan", None) == "pro")
        flags.set_feature_data("chat", {"owner": "web", "ticket": 7})
        flags.activate_percentage("chat", 20)
        flags.activate_group("chat", "pro")
        flags.activate_user("chat", "listed")
        yield flags


@pytest.fixture
def provider(flags: Rollout) -> Iterator[RolloutProvider]:
    provider = RolloutProvider(flags, status_interval=None)
    provider.initialize(EvaluationContext())
    yield provider
    provider.shutdown()


def plain(details: FlagResolutionDetails[Any]) -> FlagResolutionDetails[Any]:
    """The same fields in the dataclass itself, the metadata a dict of its own."""
    return FlagResolutionDetails(
        details.value,
        details.error_code,
        details.error_message,
        details.reason,
        details.variant,
        dict(details.flag_metadata),
    )


def keys(flags: Rollout) -> dict[str, str]:
    """A key of each reason: a listed user, one in the bucket, one out of it."""
    inside = next(f"u{i}" for i in range(1000) if flags.explain("chat", f"u{i}").active)
    outside = next(f"u{i}" for i in range(1000) if not flags.explain("chat", f"u{i}").active)
    return {"listed": "listed", "bucket in": inside, "bucket out": outside}


@pytest.mark.parametrize("plan", ["pro", "free"])
def test_a_targeted_resolution_reads_as_the_dataclass(
    flags: Rollout, provider: RolloutProvider, plan: str
) -> None:
    for key in keys(flags).values():
        context = EvaluationContext(key, {"plan": plan})
        details = provider.resolve_boolean_details("chat", False, context)
        expected = plain(provider.resolve_boolean_details("chat", False, context))
        assert details == expected
        assert expected == details
        assert details != dataclasses.replace(expected, variant="other")
        assert repr(details) == repr(
            dataclasses.replace(expected, flag_metadata=details.flag_metadata)
        )
        fields = [field.name for field in dataclasses.fields(details)]
        assert fields == [field.name for field in dataclasses.fields(expected)]
        assert [getattr(details, name) for name in fields] == [
            getattr(expected, name) for name in fields
        ]
        assert isinstance(details, FlagResolutionDetails)
        assert details.error_code is None
        assert details.error_message is None
        metadata = details.flag_metadata
        assert isinstance(metadata, MappingProxyType)
        assert details.flag_metadata is metadata  # built once
        with pytest.raises(TypeError):
            metadata["owner"] = "other"  # type: ignore[index]
        assert (metadata["owner"], metadata["ticket"]) == ("web", 7)
        assert copy.copy(details) == details
        assert dataclasses.replace(details, value=True).value is True


def test_the_reasons_and_metadata_of_each_rule(flags: Rollout, provider: RolloutProvider) -> None:
    by_key = keys(flags)
    seen = {}
    for name, key in by_key.items():
        details = provider.resolve_boolean_details(
            "chat", False, EvaluationContext(key, {"plan": "free"})
        )
        seen[name] = (details.value, details.reason, details.variant, details.flag_metadata["rule"])
    grouped = provider.resolve_boolean_details(
        "chat", False, EvaluationContext(by_key["bucket out"], {"plan": "pro"})
    )
    assert seen == {
        "listed": (True, Reason.TARGETING_MATCH, "on", "listed"),
        "bucket in": (True, Reason.SPLIT, "on", "bucket"),
        "bucket out": (False, Reason.SPLIT, "off", "bucket"),
    }
    assert (grouped.value, grouped.reason, grouped.flag_metadata["group"]) == (
        True,
        Reason.TARGETING_MATCH,
        "pro",
    )
    outside = provider.resolve_boolean_details(
        "chat", False, EvaluationContext(by_key["bucket out"], {"plan": "free"})
    )
    assert dict(outside.flag_metadata) == {
        "owner": "web",
        "ticket": 7,
        "rule": "bucket",
        "percentage": 20.0,
        "percentage_of_time": 0.0,
        "bucket": flags.explain("chat", by_key["bucket out"]).bucket,
        "threshold": flags.explain("chat", by_key["bucket out"]).threshold,
        "bucketing": "crc32",
    }


def test_the_metadata_is_built_only_when_read(
    flags: Rollout, provider: RolloutProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    metadata_for = FlagView.metadata_for

    def counted(view: FlagView, decision: Any) -> Any:
        built.append(decision)
        return metadata_for(view, decision)

    monkeypatch.setattr(FlagView, "metadata_for", counted)
    context = EvaluationContext(keys(flags)["bucket out"], {"plan": "free"})
    answers = [provider.resolve_boolean_details("chat", True, context).value for _ in range(50)]
    assert answers == [False] * 50
    assert built == []
    details = provider.resolve_boolean_details("chat", True, context)
    assert details.flag_metadata["rule"] == "bucket"
    assert details.flag_metadata["percentage"] == 20.0
    assert len(built) == 1


def test_a_caller_may_set_the_metadata_and_the_fields(
    flags: Rollout, provider: RolloutProvider
) -> None:
    context = EvaluationContext(keys(flags)["bucket in"], {"plan": "free"})
    details = provider.resolve_boolean_details("chat", False, context)
    details.flag_metadata = {"mine": True}
    details.value = False
    assert (details.flag_metadata, details.value) == ({"mine": True}, False)
    again = provider.resolve_boolean_details("chat", False, context)
    assert (again.value, again.flag_metadata["rule"]) == (True, "bucket")  # nothing shared


def test_the_client_gets_the_same_metadata(flags: Rollout, provider: RolloutProvider) -> None:
    api.set_provider_and_wait(provider, domain=DOMAIN)
    try:
        client = api.get_client(DOMAIN)
        for key in keys(flags).values():
            context = EvaluationContext(key, {"plan": "free"})
            direct = provider.resolve_boolean_details("chat", False, context)
            through = client.get_boolean_details("chat", False, context)
            assert (through.value, through.reason, through.variant) == (
                direct.value,
                direct.reason,
                direct.variant,
            )
            assert dict(through.flag_metadata) == dict(direct.flag_metadata)
    finally:
        api.shutdown()


def read_in_threads(details: FlagResolutionDetails[bool], count: int) -> list[dict[str, Any]]:
    """``dict(details.flag_metadata)`` read by ``count`` threads at once."""
    seen: list[dict[str, Any]] = []
    start = threading.Barrier(count)

    def read() -> None:
        start.wait()
        seen.append(dict(details.flag_metadata))

    threads = [threading.Thread(target=read) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_threads_reading_one_resolutions_metadata_get_equal_values(
    flags: Rollout, provider: RolloutProvider
) -> None:
    context = EvaluationContext(keys(flags)["bucket out"], {"plan": "free"})
    expected = dict(provider.resolve_boolean_details("chat", False, context).flag_metadata)
    for _ in range(20):
        details = provider.resolve_boolean_details("chat", False, context)
        assert read_in_threads(details, 4) == [expected] * 4
