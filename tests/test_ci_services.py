"""`.ci/run` first checks that the backends answer, naming one that does not (issue: under
CI=true a backend test fails rather than skips, so a missing server must be said plainly)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "services.py"


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_machines_backends_answer() -> None:
    done = _run()
    assert (done.returncode, done.stderr) == (0, "")


def test_a_backend_that_does_not_answer_is_named() -> None:
    port = _closed_port()
    done = _run(NATS_URL=f"nats://127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"NATS does not answer at 127.0.0.1:{port} ($NATS_URL)" in done.stderr
    assert "Redis" not in done.stderr


def test_another_server_on_the_port_is_not_taken_for_the_backend() -> None:
    # NATS speaks first; Redis must answer PING with PONG, not with NATS's greeting.
    nats_port = os.environ.get("NATS_URL", "nats://127.0.0.1:4222").rsplit(":", 1)[1]
    done = _run(REDIS_URL=f"redis://127.0.0.1:{nats_port}")
    assert done.returncode == 1
    assert "Redis does not answer" in done.stderr
