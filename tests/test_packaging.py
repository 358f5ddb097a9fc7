"""The wheel story of the C accelerator: what a plain ``pip install`` gets, built for real.

From a copy of the project's sources, as a release builds them: the source distribution, the
binary wheel built from it (with the accelerator), the pure-Python wheel (``ROLLOUT_BUILD_PURE=1``,
for platforms no binary wheel is built for), and a build on a machine without a C compiler,
which must still install. Each is installed with pip into a directory of its own and asked, in
a fresh interpreter that sees nothing else, which check it has and what it answers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rollout._core.bucketing import ruby_bucket

ROOT = Path(__file__).resolve().parents[1]

#: Run in the installed copy: its check's implementation and its answers for 300 users.
PROBE = """\
import json, rollout
from rollout._core import native
flags = rollout.Rollout()
flags.activate_percentage("chat", 20)
print(json.dumps([native.implementation(), [flags.active("chat", i) for i in range(300)]]))
"""

WANT = [ruby_bucket(str(i)) < math.ceil((2**32 - 1) / 100.0 * 20) for i in range(300)]


def _pip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=env,
    )


def _environment(**extra: str) -> dict[str, str]:
    variables = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ROLLOUT_BUILD_PURE", "ROLLOUT_PURE_PYTHON")
    }
    return variables | extra


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a release is built from, without what a build here left in src/."""
    copy = tmp_path_factory.mktemp("sources") / "rollout"
    copy.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(
        ROOT / "src",
        copy / "src",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.egg-info"),
    )
    return copy


def _wheel(source: Path | str, out: Path, **environment: str) -> tuple[Path, str]:
    """The wheel pip builds from ``source`` (a tree or an sdist), and what the build said."""
    out.mkdir(parents=True, exist_ok=True)
    built = _pip(
        "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out),
        str(source), env=_environment(**environment),
    )  # fmt: skip
    (wheel,) = out.glob("rollout-*.whl")
    return wheel, built.stdout + built.stderr


def _installed(target: Path, *requirement: str) -> tuple[str, list[bool]]:
    """Install with pip into ``target``; the probe's answer from a fresh interpreter there."""
    _pip("install", "--no-deps", "--no-index", "--target", str(target), *requirement)
    ran = subprocess.run(
        [sys.executable, "-S", "-c", PROBE],  # -S: no site-packages, no editable checkout
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_environment(PYTHONPATH=str(target)),
    )
    implementation, answers = json.loads(ran.stdout)
    return implementation, answers


def _members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_binary_wheel_built_from_the_sdist_carries_the_accelerator(
    sources: Path, tmp_path: Path
) -> None:
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "sdist")],
        cwd=sources,
        capture_output=True,
        check=True,
        timeout=300,
        env=_environment(),
    )
    (sdist,) = (tmp_path / "sdist").glob("rollout-*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("src/rollout/_core/_speedups.c") for name in archive.getnames())
    wheel, _ = _wheel(sdist, tmp_path / "wheel")
    assert "-cp3" in wheel.name
    assert not wheel.name.endswith("-none-any.whl")
    members = _members(wheel)
    assert any(m.startswith("rollout/_core/_speedups.") and m.endswith(".so") for m in members)
    assert "rollout/_core/_speedups.pyi" in members
    assert _installed(tmp_path / "site", str(wheel)) == ("C", WANT)


def test_the_pure_wheel_installs_anywhere_and_checks_in_python(
    sources: Path, tmp_path: Path
) -> None:
    wheel, _ = _wheel(sources, tmp_path / "wheel", ROLLOUT_BUILD_PURE="1")
    assert wheel.name.endswith("-py3-none-any.whl")
    assert not any(".so" in member for member in _members(wheel))
    assert _installed(tmp_path / "site", str(wheel)) == ("Python", WANT)


def test_a_build_without_a_c_compiler_still_installs(sources: Path, tmp_path: Path) -> None:
    # CC names the compiler setuptools runs: one that always fails, as on a machine without.
    wheel, said = _wheel(sources, tmp_path / "wheel", CC="false")
    assert 'building extension "rollout._core._speedups" failed' in said
    assert not any(".so" in member for member in _members(wheel))
    assert _installed(tmp_path / "site", str(wheel)) == ("Python", WANT)


def test_pip_takes_the_binary_wheel_where_both_are_published(sources: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    _wheel(sources, tmp_path / "binary")
    _wheel(sources, tmp_path / "pure", ROLLOUT_BUILD_PURE="1")
    index.mkdir()
    for wheel in (*(tmp_path / "binary").glob("*.whl"), *(tmp_path / "pure").glob("*.whl")):
        shutil.copy(wheel, index)
    assert len(list(index.glob("*.whl"))) == 2
    assert _installed(tmp_path / "site", "--find-links", str(index), "rollout") == ("C", WANT)
