"""A big ``rollout import`` (or ``import-ruby``) says on stderr what it is doing; a small one
says nothing there. Real processes, real SQLite files, a real Redis for the Ruby import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rollout import Rollout

from ..redis.redis_fixtures import namespace, redis_url  # noqa: F401  (fixtures)


def rollout(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    return subprocess.run(
        [sys.executable, "-m", "rollout", *args], input=stdin, capture_output=True,
        env=env, timeout=300, check=False,
    )  # fmt: skip


def export_of(path: Path, users: int) -> Path:
    """An export of one flag on for ``users`` users (25,000 make about 1.4 MB)."""
    with Rollout(f"sqlite:///{path.with_suffix('.db')}") as flags:
        flags.activate_users("big", [str(i) for i in range(users)])
        path.write_bytes(flags.export())
    return path


def test_a_big_import_says_it_is_merging_and_how_many_flags_changed(tmp_path: Path) -> None:
    export = export_of(tmp_path / "flags.export", 25_000)
    size = f"{export.stat().st_size / (1 << 20):.1f} MB"
    done = rollout("import", str(export), "--store", f"sqlite:///{tmp_path / 'new.db'}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines() == [
        f"rollout import: merging {size} from {export} (all of it is checked before anything "
        "is written)",
        "rollout import: merged: 1 flag changed",
    ]
    assert done.stdout.decode().splitlines()[1].split()[:2] == ["big", "partial"]
    # A small one: nothing on stderr.
    small = rollout("import", str(export_of(tmp_path / "small.export", 10)),
                    "--store", f"sqlite:///{tmp_path / 'small.db'}")  # fmt: skip
    assert (small.returncode, small.stderr) == (0, b"")


def test_a_big_import_from_stdin_says_so(tmp_path: Path) -> None:
    export = export_of(tmp_path / "flags.export", 25_000)
    done = rollout("import", "--store", f"sqlite:///{tmp_path / 'new.db'}",
                   stdin=export.read_bytes())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert " from stdin (all of it" in done.stderr.decode()


def test_a_big_ruby_import_says_how_many_flags_it_read_and_wrote(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
) -> None:
    source = tmp_path / "source.db"
    with Rollout(f"sqlite:///{source}") as flags:
        for i in range(1000):
            flags.activate_percentage(f"flag_{i}", 10)
    common = ["--redis", redis_url, "--ruby-namespace", namespace]
    wrote = rollout("export-ruby", *common, "--store", f"sqlite:///{source}")
    assert wrote.returncode == 0, wrote.stderr
    done = rollout("import-ruby", *common, "--store", f"sqlite:///{tmp_path / 'new.db'}")
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines() == [
        "rollout import-ruby: read 1000 flags from Redis; checking them",
        "rollout import-ruby: wrote 1000 flags",
    ]
    # One flag fewer than the threshold: nothing on stderr (a namespace of its own, under the
    # test's, so the fixture removes it too).
    with Rollout(f"sqlite:///{source}") as flags:
        flags.delete("flag_0")
    fewer = ["--redis", redis_url, "--ruby-namespace", f"{namespace}:fewer"]
    assert rollout("export-ruby", *fewer, "--store", f"sqlite:///{source}").returncode == 0
    small = rollout("import-ruby", *fewer, "--store", f"sqlite:///{tmp_path / 'other.db'}")
    assert (small.returncode, small.stderr) == (0, b"")
    assert len(small.stdout.splitlines()) == 1 + 999  # the header and every flag
