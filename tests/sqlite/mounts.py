"""Real file systems in a bad state for the SQLite tests: a tiny tmpfs that fills up, an ext4
image that turns itself read-only after an error, as a failing disk does with
``errors=remount-ro``.

Mounting needs root (and a kernel that lets this container mount). Without them the tests skip
locally and fail under ``CI=true``, where they must run (CI runs as root).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["ext4_image", "need_mounts", "remount_read_only", "tmpfs", "trigger_fs_error"]


def need_mounts(reason: str) -> NoReturn:
    """No mount can be made here: skip locally, fail under CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the file-system tests must run)", pytrace=False)
    pytest.skip(reason)


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        need_mounts(f"{' '.join(command)} failed: {result.stderr.strip()}")


def _unmount(path: Path) -> None:
    # Lazily: a process of the test that still has a file open there must not keep it mounted.
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60, check=False)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"1m"``) mounted on ``path`` (created) for the block."""
    if os.geteuid() != 0:
        need_mounts("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


def remount_read_only(path: Path) -> None:
    """``mount -o remount,ro``: refused by the kernel while a file there is open for writing."""
    _run("mount", "-o", "remount,ro", str(path))


@contextmanager
def ext4_image(path: Path, image: Path) -> Iterator[str]:
    """An 8 MB ext4 file system in ``image``, loop-mounted on ``path`` with
    ``errors=remount-ro``; yields its block device's name (``loop3``)."""
    if os.geteuid() != 0:
        need_mounts("loop-mounting an ext4 image needs root")
    path.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as file:
        file.truncate(8 * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", str(image))
    _run("mount", "-o", "loop,errors=remount-ro", str(image), str(path))
    try:
        source = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(path)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
        yield Path(source).name
    finally:
        _unmount(path)


def trigger_fs_error(device: str) -> None:
    """Make ext4 on ``device`` record an error, as a failing disk does: with
    ``errors=remount-ro`` every later write there fails with EROFS."""
    trigger = Path(f"/sys/fs/ext4/{device}/trigger_fs_error")
    if not trigger.exists():
        need_mounts(f"this kernel has no {trigger}")
    trigger.write_text("rollout test\n")
