"""A big export (over a megabyte) merges whole, and leaves the garbage collector as it was:
decoding pauses it while JSON is parsed (rollout._core.codec), and must give it back, also when
the document is refused, and must not turn it on for an application that turned it off."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
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


_GROWTH = """
import gc, os
from rollout import Rollout

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

with Rollout() as source:
    source.activate_users("big", range({users}))
    data = source.export()
gc.collect()
before = rss_mb()
with Rollout() as flags:
    flags.merge(data)
    del data
    gc.collect()
    print(rss_mb() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_a_merge_keeps_little_more_memory_than_its_registers_need() -> None:
    """The parse of an export makes a list and two ints per register, which the merge drops;
    interleaved with what it keeps, they used to hold on to 2 MB per 10,000 users after the
    merge (59 MB here), returned now (26 MB). In a fresh interpreter: RSS is the process's."""
    users = 300_000
    result = subprocess.run(
        [sys.executable, "-c", _GROWTH.format(users=users)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    growth_mb = float(result.stdout)
    assert growth_mb < 42, f"{growth_mb:.0f} MB more after merging {users:,} users"


@pytest.mark.parametrize("odd_id", [None, "a\0history:b"], ids=["plain-ids", "an-id-with-a-nul"])
def test_a_big_flag_lists_its_users_and_no_other_keys_tail(odd_id: str | None) -> None:
    """A flag past a thousand registers builds its users in bulk (rollout._core.listed_names):
    keys that are no user (``exists``, ``data:abc``) must not list their tails (``s``,
    ``abc``), a user set false is not listed, and a user named as a data key is. An id holding
    a NUL (where the bulk path splits keys) is taken whole."""
    odd = [] if odd_id is None else [odd_id]
    with Rollout() as source:
        source.activate_users("big", [str(i) for i in range(1_200)] + odd)
        source.set_feature_data("big", {"abc": 1, "both": 2})
        source.activate_users("big", ["both", "gone"])
        source.deactivate_user("big", "gone")
        document = source.export()
    with Rollout() as flags:
        flags.merge(document)
        assert set(flags.get("big").users) == {*map(str, range(1_200)), "both", *odd}
        assert flags.get("big").data == {"abc": 1, "both": 2}
        assert len(flags.history("big")) == len(source.history("big"))
        assert not flags.active("big", "s")
        assert not flags.active("big", "abc")
        assert flags.active("big", "both")
        assert not flags.active("big", "gone")
