"""``--timeout`` and the progress line of a command waiting for its ``--peers``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from rollout.testing.cluster import free_port

from .test_cli_cluster import SECRET, rollout


def dead_peers(count: int) -> list[str]:
    # Free ports nobody listens on: a connection is refused at once, every time it is retried.
    return [f"127.0.0.1:{free_port()}" for _ in range(count)]


def test_timeout_bounds_the_wait_and_the_error_names_every_peer_not_reached() -> None:
    peers = dead_peers(2)
    result = rollout("--store", "memory://", "list", "--peers", ",".join(peers), "--timeout", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("rollout: error: no peer answered within 1 s; not reached: ")
    assert f"not reached: {peers[0]}, {peers[1]} " in result.stderr
    # Not a terminal: no progress line, only the error (one line).
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_a_bad_timeout_is_a_usage_error_naming_it() -> None:
    for value in ("0", "-1", "soon", "100000"):
        result = rollout("list", "--store", "memory://", "--peers", "127.0.0.1:9",
                         "--timeout", value)  # fmt: skip
        assert result.returncode == 2
        assert f"argument --timeout: invalid seconds value: '{value}'" in result.stderr
    # members has --timeout for --url too: checked when it waits for peers as well.
    result = rollout("members", "--store", "memory://", "--peers", "127.0.0.1:9", "--timeout", "-1")
    assert result.returncode == 2
    assert "--timeout must be a positive number of seconds, at most 86400, got -1" in result.stderr


def test_on_a_terminal_a_progress_line_counts_the_peers_synced_and_is_erased() -> None:
    peers = dead_peers(2)
    reader, writer = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env["ROLLOUT_SECRET"] = SECRET
    process = subprocess.Popen(
        [sys.executable, "-m", "rollout", "list", "--store", "memory://",
         "--peers", ",".join(peers), "--timeout", "2"],
        stdout=subprocess.PIPE, stderr=writer, env=env,
    )  # fmt: skip
    os.close(writer)
    seen = b""
    while True:
        try:
            chunk = os.read(reader, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(reader)
    assert process.wait(timeout=60) == 2
    assert process.stdout is not None
    process.stdout.close()
    text = seen.decode()
    assert "\r\x1b[Kwaiting for peers: 0 of 2 synced, " in text, text
    assert "(--timeout 2)" in text
    # The live line is erased before the error, which names both peers.
    error = text.rsplit("\r\x1b[K", 1)[1]
    assert error.startswith("rollout: error: no peer answered within 2 s"), text
    assert f"not reached: {peers[0]}, {peers[1]}" in error
