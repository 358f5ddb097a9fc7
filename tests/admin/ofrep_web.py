"""The browser's OFREP provider (``@openfeature/ofrep-web-provider`` with ``@openfeature/web-sdk``)
as one script a test page loads: installed from npm at the versions ``ofrep/web/package-lock.json``
pins, into a cache folder outside the repository, and bundled with esbuild.

``$ROLLOUT_OFREP_WEB`` names the folder (default: ``~/.cache/rollout-tests/ofrep-web``); the
bundle is rebuilt when the lock file changes. Without ``npm`` the tests that need it skip,
except under ``CI=true``, where that is a failure: CI must not go green by testing nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent / "ofrep" / "web"
FILES = ("package.json", "package-lock.json", "entry.js")
BUNDLE = "ofrep-bundle.js"


def _folder() -> Path:
    configured = os.environ.get("ROLLOUT_OFREP_WEB")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "rollout-tests" / "ofrep-web"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def ofrep_web_bundle() -> Path:
    """The bundle's path, installing and building it first if the pinned one is not there."""
    digest = hashlib.sha256(b"".join((SOURCE / name).read_bytes() for name in FILES)).hexdigest()
    folder = _folder()
    bundle, stamp = folder / BUNDLE, folder / "built-from"
    if bundle.exists() and stamp.exists() and stamp.read_text() == digest:
        return bundle
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("the OFREP browser test needs npm (and Node.js) to install the web provider")
    assert npm is not None
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(SOURCE / name, folder / name)
    # `npm ci`: exactly the lock file's versions; no install scripts are needed (esbuild's
    # binary comes as an optional dependency for the platform).
    steps = [
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(folder)],
        [
            str(folder / "node_modules" / ".bin" / "esbuild"),
            str(folder / "entry.js"),
            "--bundle",
            "--format=iife",
            f"--outfile={bundle}",
            "--log-level=warning",
        ],
    ]
    for step in steps:
        done = subprocess.run(
            step, cwd=folder, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            _unavailable(f"{' '.join(step[:2])} failed:\n{done.stdout}\n{done.stderr}")
    stamp.write_text(digest)
    return bundle
