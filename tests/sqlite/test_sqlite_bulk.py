"""Many keys of one register (one write's users, an export merged) are saved as one statement
over a JSON array (rollout.sqlite._rows): they must land exactly as row by row would, ids of any
text included, and lose to what the file holds that is newer, as any register does."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout import Rollout, SQLiteStore
from rollout._core.clock import Timestamp
from rollout._core.keys import RESET
from rollout._core.state import Register
from rollout.sqlite import _rows, _store

# Ids that JSON writes with an escape, or with bytes beyond ASCII: each of them a reason the
# array could read back differently from the id that was written.
AWKWARD = ['a "quoted" id', "back\\slash", "tab\there", "new\nline", "nul\x00", "ünï ✓", "🚀"]


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.mark.parametrize("json_each", [True, False], ids=["json_each", "row-by-row"])
def test_a_bulk_write_reads_back_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_each: bool
) -> None:
    if not json_each:  # an SQLite built without JSON: every register is bound row by row
        monkeypatch.setattr(_store, "has_json_each", lambda connection: False)
    path = tmp_path / "flags.db"
    plain = [f"user-{i}" for i in range(500)]
    with Rollout(_url(path)) as flags:
        flags.activate_users("plain", plain)
        flags.activate_users("awkward", [*plain, *AWKWARD])  # escapes: bound row by row
        flags.activate_users("unicode", [*plain, "ünï ✓", "🚀", "\u2028"])  # no escape
        flags.activate_users("few", ["only", 'one "quoted"'])
        flags.exclude_users("plain", plain[:100])
        flags.deactivate_users("plain", plain[100:200])
        written = {name: flags.get(name).to_dict() for name in flags.features()}
        exported = flags.export()
    with Rollout(_url(path)) as flags:
        assert {name: flags.get(name).to_dict() for name in flags.features()} == written
        assert flags.export() == exported
    assert set(written["awkward"]["users"]) == {*plain, *AWKWARD}
    assert set(written["unicode"]["users"]) == {*plain, "ünï ✓", "🚀", "\u2028"}
    assert len(written["plain"]["users"]) == 400


def test_a_merged_export_loses_to_newer_registers_in_the_file(tmp_path: Path) -> None:
    with Rollout() as elsewhere:
        elsewhere.activate_users("f", range(200))  # older than everything written below
        older = elsewhere.export()
    path = tmp_path / "flags.db"
    with Rollout(_url(path)) as flags:
        flags.activate_users("f", range(100, 300))
        flags.deactivate_users("f", range(100, 150))
        flags.merge(older)
        expected = {str(i) for i in [*range(100), *range(150, 300)]}
        assert set(flags.get("f").users) == expected
    with Rollout(_url(path)) as flags:  # the file agrees with the replica
        assert set(flags.get("f").users) == expected
    with Rollout() as elsewhere:
        elsewhere.merge(older)
        elsewhere.deactivate_users("f", range(50))  # newer than the file's
        newer = elsewhere.export()
    with Rollout(_url(path)) as flags:
        flags.merge(newer)
    with Rollout(_url(path)) as flags:
        assert set(flags.get("f").users) == expected - {str(i) for i in range(50)}


def test_a_watermark_sharing_the_users_register_is_saved_as_a_watermark(tmp_path: Path) -> None:
    """A store of one's own may hand over a delta whose watermark is the very Register its
    users hold (a watermark's value is never read); the file must keep it as a watermark."""
    ts = Timestamp(1_700_000_000_000, 0, 7)
    shared = Register(ts, True)
    delta = {"f": {RESET: shared, "exists": shared, **{f"user:{i}": shared for i in range(100)}}}
    store = SQLiteStore(tmp_path / "flags.db")
    try:
        store.save(delta)
        loaded = store.load()["f"]
    finally:
        store.close()
    assert loaded[RESET] == Register(ts, None)
    assert loaded["user:99"] == shared
    assert len(loaded) == 102


def test_a_write_bigger_than_one_array_lands_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys go as arrays of a bounded size; an array holding an id JSON escapes goes row by
    row, the other arrays of the same write stay arrays."""
    monkeypatch.setattr(_rows, "_ARRAY_KEYS", 100)
    users = [*(f"u{i}" for i in range(500)), 'a "quoted" id', *(f"v{i}" for i in range(500))]
    path = tmp_path / "flags.db"
    with Rollout(_url(path)) as flags:
        flags.activate_users("f", users)
    with Rollout(_url(path)) as flags:
        assert flags.get("f").users == frozenset(users)
