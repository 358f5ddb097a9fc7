"""``make run`` itself, as the README gives it: it starts ``rollout serve`` and prints the
dashboard's address; the dashboard answers; a stop signal ends it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_the_dashboard_and_stops_on_sigterm(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "MAKE"))}
    process = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "run", f"ARGS=--http 127.0.0.1:0 --store {store}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,  # its own process group: make and rollout serve
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Dashboard: "):
                break
        url = lines[-1].removeprefix("Dashboard: ") if lines else ""
        assert url.startswith("http://127.0.0.1:"), lines
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200
        assert "<title>" in page.text
        assert httpx.get(url + "healthz", timeout=10).json() == {"status": "ok", "flags": 0}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    with pytest.raises(ProcessLookupError):  # nothing of the group is left running
        os.killpg(process.pid, 0)
    assert "Traceback" not in stderr
