"""A big export (over a megabyte) merges whole, and leaves the garbage collector as it was:
decoding pauses it while JSON is parsed (rollout._core.codec), and must give it back, also when
the document is refused, and must not turn it on for an application that turned it off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rollout import FormatError, Rollout

USERS = 40_000  # about 2 MB of export: past the size from which the collector is paused


@pytest.fixture(scope="module")
def big_export() -> bytes:
    with Rollout() as flags:
        flags.activate_users("big", range(USERS))
        flags.activate_percentage("small", 30)
        data = flags.export()
    assert len(data) > 1 << 20
    return data


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_big_export_merges_whole_and_the_collector_runs_after(
    big_export: bytes, collector_enabled: None
) -> None:
    with Rollout() as flags:
        assert flags.merge(big_export) == {"big", "small"}
        assert len(flags.get("big").users) == USERS
        assert flags.active("big", USERS - 1)
        assert not flags.active("big", USERS)
        assert flags.get("small").percentage == 30
    assert gc.isenabled()


def test_a_refused_big_document_gives_the_collector_back(
    big_export: bytes, collector_enabled: None
) -> None:
    with Rollout() as flags, pytest.raises(FormatError):
        flags.merge(big_export[:-3])  # cut short: not JSON
    assert gc.isenabled()


def test_a_collector_the_application_turned_off_stays_off(big_export: bytes) -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with Rollout() as flags:
            flags.merge(big_export)
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
