"""The SQLite store in a bad environment, as an operator meets it: a full disk, a file system
that turns read-only, the store's folder deleted under a running server, a damaged file.

Real file systems (a tmpfs, a loop-mounted ext4 image; tests/sqlite/mounts.py), a real
``rollout serve`` process and the real ``rollout`` command. Each failure must say its cause
and name the file, never "cannot rollback - no transaction is active" or a traceback, and a
write that was refused must not show up anywhere.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout, StoreError
from rollout.testing import eventually

from ..admin.serve_process import Served, clean_env, rollout, serve
from .mounts import ext4_image, remount_read_only, tmpfs, trigger_fs_error

TOKEN = "0123456789abcdef0123456789abcdef"  # 128 bits: what a non-loopback serve would ask


def _serve(path: Path, cwd: Path) -> contextlib.AbstractContextManager[Served]:
    """``rollout serve`` on the store at ``path``, writes authorised by a bearer token."""
    env = clean_env(ROLLOUT_TOKEN=f"ops={TOKEN}")
    return serve("--http", "127.0.0.1:0", "--store", _url(path), cwd=cwd, env=env, token=TOKEN)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


@contextlib.contextmanager
def _raw(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def _one_line_error(result: object, *needles: str) -> str:
    """The ``rollout`` command's refusal: exit 2, one line on stderr containing ``needles``."""
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rollout: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# A full disk ----------------------------------------------------------------------------------


def _fill(flags: Rollout, big: str) -> str:
    """Write data until the disk is full; the StoreError's message."""
    for i in range(1000):  # 4 MB into 1 MB: bounded, and fails long before the end
        try:
            flags.set_feature_data("chat", {f"k{i}": big})
        except StoreError as exc:
            return str(exc)
    raise AssertionError("4 MB fitted into a 1 MB file system")


def test_a_full_disk_says_disk_full_and_keeps_nothing_of_the_write(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "1m") as mount:
        path = mount / "flags.db"
        with Rollout(_url(path)) as flags:
            flags.activate_user("chat", "before")
            big = "x" * 4000
            message = _fill(flags, big)
            print(message)
            assert "disk full" in message
            assert str(path) in message
            assert "no transaction is active" not in message
            written = dict(flags.get("chat").data)
            # What failed was not applied here; what succeeded before it is still there.
            assert flags.active("chat", "before")
        with Rollout(_url(path)) as reopened:
            assert dict(reopened.get("chat").data) == written

        # The command an operator types next: one line that says why, exit 2.
        result = rollout(
            "--store", _url(path), "data", "chat", f"more={big}", cwd=tmp_path, env=clean_env()
        )
        _one_line_error(result, "disk full", str(path))


# A file system turned read-only ----------------------------------------------------------------


def test_a_file_system_turned_read_only_under_serve_says_read_only(tmp_path: Path) -> None:
    with ext4_image(tmp_path / "disk", tmp_path / "disk.img") as device:
        path = tmp_path / "disk" / "flags.db"
        with _serve(path, tmp_path) as served, served.client() as http:
            ok = http.put("/api/v1/flags/chat/percentage", json={"percentage": 10})
            assert ok.status_code == 200, ok.text
            trigger_fs_error(device)  # ext4 with errors=remount-ro: every write now gets EROFS

            refused = http.put("/api/v1/flags/chat/percentage", json={"percentage": 90})
            print(refused.text)
            assert refused.status_code == 503
            message = refused.json()["error"]["message"]
            assert "read-only file system" in message
            assert str(path) in message
            assert "no transaction is active" not in message
            # Nothing of the refused write is served; reads keep answering.
            after = http.get("/api/v1/flags/chat")
            assert after.status_code == 200
            assert after.json()["percentage"] == 10

        result = rollout("--store", _url(path), "activate", "chat", cwd=tmp_path)
        _one_line_error(result, "read-only file system", str(path))


def test_a_store_on_a_read_only_mount_says_read_only(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "4m") as mount:
        path = mount / "flags.db"
        with Rollout(_url(path)) as flags:
            flags.activate("chat")
        remount_read_only(mount)
        with pytest.raises(StoreError) as caught:
            Rollout(_url(path)).close()
        assert "read-only file system" in str(caught.value)
        assert str(path) in str(caught.value)
        result = rollout("--store", _url(path), "list", cwd=tmp_path, env=clean_env())
        _one_line_error(result, "read-only file system", str(path))


def test_a_file_sqlite_can_only_open_read_only_says_read_only_file(tmp_path: Path) -> None:
    # SQLite's own limit: a file it cannot open for writing is opened read-only, and each write
    # then fails with "attempt to write a readonly database". Root ignores file modes, so the
    # file is made immutable (chattr +i) on a real ext4 file system.
    with ext4_image(tmp_path / "disk", tmp_path / "disk.img"):
        path = tmp_path / "disk" / "flags.db"
        with Rollout(_url(path)) as flags:
            flags.activate_user("chat", "before")
        subprocess.run(["chattr", "+i", str(path)], check=True, timeout=60)
        try:
            with Rollout(_url(path)) as flags:
                assert flags.active("chat", "before")  # reads work
                with pytest.raises(StoreError) as caught:
                    flags.activate_user("chat", "after")
                assert not flags.active("chat", "after")
            message = str(caught.value)
            print(message)
            assert "read-only file" in message
            assert "read-only file system" not in message
            assert str(path) in message
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True, timeout=60)


# The store deleted under a running process ------------------------------------------------------


def test_a_store_deleted_under_serve_refuses_writes_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    path = folder / "flags.db"
    with _serve(path, tmp_path) as served, served.client() as http:
        assert http.put("/api/v1/flags/chat/active", json={"active": True}).status_code == 200
        shutil.rmtree(folder)  # an operator's cleanup script, a redeploy that wiped the folder

        refused = http.post("/api/v1/flags/chat/users", json={"users": ["42"]})
        print(refused.text)
        assert refused.status_code == 503, refused.text
        message = refused.json()["error"]["message"]
        assert str(path) in message
        assert "deleted or replaced" in message
        assert "42" not in http.get("/api/v1/flags/chat").json()["users"]

        # The folder put back with a new, empty file: still not the file this process opened.
        folder.mkdir()
        Rollout(_url(path)).close()
        again = http.post("/api/v1/flags/chat/users", json={"users": ["42"]})
        assert again.status_code == 503, again.text
        assert "deleted or replaced" in again.json()["error"]["message"]


def test_a_file_replaced_under_the_library_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    with Rollout(_url(path)) as flags:
        flags.activate_user("chat", "kept")
        for suffix in ("", "-wal", "-shm"):  # moved aside whole, as a backup script would
            Path(f"{path}{suffix}").rename(tmp_path / f"moved-aside.db{suffix}")
        with pytest.raises(StoreError) as caught:
            flags.activate_user("chat", "lost")
        assert str(path) in str(caught.value)
        assert not flags.active("chat", "lost")
    with Rollout(_url(tmp_path / "moved-aside.db")) as moved:
        assert moved.get("chat").users == {"kept"}


# A damaged file -------------------------------------------------------------------------------


def _store_with_flags(path: Path) -> None:
    with Rollout(_url(path)) as flags:
        for n in range(5):
            flags.activate_users(f"flag{n}", [str(u) for u in range(20)])
            flags.set_feature_data(f"flag{n}", {"owner": "team"})
    with _raw(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.mark.parametrize(
    ("column", "where", "damaged"),
    [
        pytest.param("value", "key = 'data:owner'", '{"team', id="value-not-json"),
        pytest.param("value", "key = 'user:7'", "tr\x15e", id="boolean-not-json"),
        pytest.param("value", "key = 'user:7'", "7", id="boolean-a-number"),
        pytest.param("key", "key = 'exists'", "exiwts", id="exists-key-flipped"),
        pytest.param("wall", "key = 'user:3'", "12x4", id="timestamp-text"),
    ],
)
def test_a_damaged_row_is_a_store_error_naming_the_file(
    tmp_path: Path, column: str, where: str, damaged: str
) -> None:
    path = tmp_path / "flags.db"
    _store_with_flags(path)
    with _raw(path) as connection:
        changed = connection.execute(
            f"UPDATE registers SET {column} = ? WHERE flag = 'flag2' AND {where}", (damaged,)
        ).rowcount
        assert changed == 1
    # Before: JSONDecodeError, or flag2 silently missing (its "exists" gone), or a TypeError.
    with pytest.raises(StoreError) as caught:
        Rollout(_url(path)).close()
    message = str(caught.value)
    print(message)
    assert str(path) in message
    assert "corrupt" in message
    assert "flag2" in message
    result = rollout("--store", _url(path), "list", cwd=tmp_path, env=clean_env())
    _one_line_error(result, "corrupt", str(path))


# A bulk write's users are taken as the row before them was (rollout.sqlite._load): each of these
# damages one row in the middle of such a run, and none may pass for a user like its neighbours.
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param([("key", "user:7", "usex:7")], id="key-flipped"),
        pytest.param([("key", "user:7", b"user:7")], id="key-bytes"),
        pytest.param([("value", "user:7", b"true")], id="value-bytes"),
        pytest.param([("wall", "user:7", 12.5)], id="timestamp-fraction"),
        pytest.param([("counter", "user:7", "0x")], id="timestamp-text"),
        # A member key, then (other rows between) a prefix without a member, alike otherwise.
        pytest.param([("key", "user:6", "exclude:6"), ("key", "user:7", "group:")], id="bare"),
    ],
)
def test_a_damaged_row_among_a_bulk_writes_users_is_a_store_error(
    tmp_path: Path, damage: list[tuple[str, str, object]]
) -> None:
    path = tmp_path / "flags.db"
    _store_with_flags(path)
    with _raw(path) as connection:
        for column, key, damaged in damage:
            connection.execute(
                f"UPDATE registers SET {column} = ? WHERE flag = 'flag2' AND key = ?",
                (damaged, key),
            )
    with pytest.raises(StoreError) as caught:
        Rollout(_url(path)).close()
    assert str(path) in str(caught.value)
    assert "corrupt" in str(caught.value)
    assert "flag2" in str(caught.value)


def test_flipped_bytes_in_a_page_are_a_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.db"
    _store_with_flags(path)
    with _raw(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    # The last leaf page holding rows (b-tree page type 0x0a) loses one cell from its count,
    # as a flipped bit leaves it: SQLite itself reads on without an error of its own.
    leaves = [
        start
        for start in range(page_size, len(data), page_size)
        if data[start] == 0x0A and int.from_bytes(data[start + 3 : start + 5], "big") > 1
    ]
    assert leaves, "the table spans several pages"
    data[leaves[-1] + 4] ^= 0x01
    path.write_bytes(bytes(data))

    # Before: a TypeError from the JSON decoder, or fewer rows loaded without a word.
    with pytest.raises(StoreError) as caught:
        Rollout(_url(path)).close()
    print(caught.value)
    assert str(path) in str(caught.value)
    assert "corrupt" in str(caught.value)
    result = rollout("--store", _url(path), "list", cwd=tmp_path, env=clean_env())
    _one_line_error(result, "corrupt", str(path))


def test_a_relative_store_still_writes_after_the_process_changes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file is checked before each write; a relative path must keep meaning the file opened.
    monkeypatch.chdir(tmp_path)
    with Rollout("sqlite:///flags.db") as flags:
        monkeypatch.chdir(tmp_path.parent)
        flags.activate_user("chat", "after-chdir")
    with Rollout(_url(tmp_path / "flags.db")) as reopened:
        assert reopened.active("chat", "after-chdir")


# A path SQLite cannot open -----------------------------------------------------------------------


def test_a_store_in_a_missing_folder_says_the_folder_is_missing(tmp_path: Path) -> None:
    """A deleted folder at start (a volume not mounted yet): SQLite creates the file, never its
    folder, and says only "unable to open database file"."""
    path = tmp_path / "state" / "flags.db"
    result = rollout("--store", _url(path), "activate", "chat", cwd=tmp_path, env=clean_env())
    print(result.stderr)
    _one_line_error(result, str(path), "no such folder", str(path.parent))
    assert not path.parent.exists()


def test_a_store_url_naming_a_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    result = rollout("--store", _url(tmp_path), "list", cwd=tmp_path, env=clean_env())
    print(result.stderr)
    _one_line_error(result, str(tmp_path), "a folder, not a file")


# A row damaged by another program while serve runs ----------------------------------------------


def test_a_row_damaged_under_serve_is_one_log_line_not_ready_and_a_fix_is_picked_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.db"
    Rollout(_url(path)).close()
    with _serve(path, tmp_path) as served, served.client() as http:
        assert http.put("/api/v1/flags/chat/active", json={"active": True}).status_code == 200
        with _raw(path) as raw:  # another program writes a row that is not a register
            raw.execute(
                "INSERT INTO registers SELECT 'chat', 'data:x', wall, counter, node, 'not json{' "
                "FROM registers WHERE flag = 'chat' AND key = 'exists'"
            )
        eventually(lambda: "is corrupt" in served.stderr(), 30, "the damage logged")
        time.sleep(1.0)  # four more looks at the file: not logged again
        log = served.stderr()
        print(log)
        assert "Traceback" not in log
        lines = [line for line in log.splitlines() if "is corrupt" in line]
        assert len(lines) == 1, lines
        assert "'data:x' of flag 'chat'" in lines[0]
        assert str(path) in lines[0] or "flags.db" in lines[0]
        # Other processes' changes no longer arrive: not a replica to send traffic to. (A
        # store answer is reused for up to a second: wait for a fresh one.)
        eventually(lambda: http.get("/readyz").status_code == 503, 30, "not ready")
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "refuses to serve" in ready.json()["checks"]["store"]["problem"]

        with _raw(path) as raw:  # the operator repairs the row: the next look merges it
            raw.execute("UPDATE registers SET value = '\"fixed\"' WHERE key = 'data:x'")
        eventually(
            lambda: http.get("/api/v1/flags/chat").json()["data"] == {"x": "fixed"},
            30,
            "the repaired flag merged",
        )
        # Logged just after the merge that the API shows: a moment later, on a busy machine.
        eventually(lambda: "is read again" in served.stderr(), 30, "the repair logged")
        eventually(lambda: http.get("/readyz").status_code == 200, 30, "ready again")


def test_a_failed_load_whose_error_is_kept_still_sees_the_repaired_file(tmp_path: Path) -> None:
    """The failed load's unfinished statement held a read transaction open while anything held
    its traceback (a caller keeping the error): the file was then read as that old snapshot."""
    path = tmp_path / "flags.db"
    with Rollout(_url(path)) as flags:
        flags.activate("chat")
        with _raw(path) as raw:  # another program
            raw.execute(
                "INSERT INTO registers SELECT 'chat', 'data:x', wall, counter, node, 'not json{' "
                "FROM registers WHERE flag = 'chat' AND key = 'exists'"
            )
        with pytest.raises(StoreError, match="is corrupt") as raised:
            flags.refresh()
        with pytest.raises(StoreError, match="is corrupt"):
            flags.ping_store()  # what /readyz asks: other processes' changes do not arrive
        with _raw(path) as raw:
            raw.execute("UPDATE registers SET value = '\"fixed\"' WHERE key = 'data:x'")
        assert flags.refresh() == {"chat"}
        assert flags.get("chat").data == {"x": "fixed"}
        flags.ping_store()
        assert raised.value is not None  # kept to the end, as a caller may keep it
