"""``rollout serve`` as a real process, the way ``make run`` starts it, and a client for it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: The console script ``make run`` runs (``$(BIN)/rollout serve``).
ROLLOUT = Path(sys.executable).parent / "rollout"
STARTUP = 60.0  # a generous limit for a busy machine; a healthy start takes about a second


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ROLLOUT_ variable of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    return {**env, **extra}


def rollout(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rollout`` command once."""
    return subprocess.run(
        [str(ROLLOUT), *args],
        cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


_WITH_LIMIT = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str  #: the dashboard address it printed, e.g. http://127.0.0.1:8080/
    lines: list[str]  #: what it printed on stdout before the dashboard address (and that line)
    token: str | None = None
    stderr_path: Path = field(default_factory=Path)
    returncode: int | None = None  #: set once it has stopped

    def client(self, token: str | None = "default") -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=30.0)

    def stderr(self) -> str:
        return self.stderr_path.read_text()


@contextmanager
def serve(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    token: str | None = None,
    stop: signal.Signals = signal.SIGTERM,
    open_files: tuple[int, int] | None = None,
) -> Iterator[Served]:
    """Start ``rollout serve ARGS`` in ``cwd``; yield once it printed its dashboard address.

    ``open_files``: the (soft, hard) limit on open files it starts with (``ulimit -n``).
    On leaving, send ``stop`` and wait for the process; ``returncode`` is then set.
    """
    stderr_path = cwd / f"serve-{len(list(cwd.glob('serve-*.log')))}.log"
    command = [str(ROLLOUT), "serve", *args]
    if open_files is not None:  # set in a small Python that then becomes rollout (no preexec_fn)
        command = [sys.executable, "-c", _WITH_LIMIT, *map(str, open_files), *command]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=cwd, env=env or clean_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: Any = process.stdout) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    served = Served(process, "", [], token, stderr_path)
    try:
        while True:
            try:
                line = lines.get(timeout=STARTUP)
            except queue.Empty:
                raise AssertionError(f"no dashboard address:\n{stderr_path.read_text()}") from None
            if line is None:
                process.wait(timeout=30)
                raise AssertionError(
                    f"serve exited {process.returncode} before printing its dashboard "
                    f"address:\n{stderr_path.read_text()}"
                )
            served.lines.append(line)
            if line.startswith("Dashboard: "):
                served.url = line.removeprefix("Dashboard: ")
                break
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(stop)
        try:
            served.returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"serve ignored {stop.name}:\n{stderr_path.read_text()}") from None
        finally:
            process.stdout.close()


def put(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/api/v1{path}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def get_json(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return json.loads(response.text)


@contextmanager
def serve_with_token(tmp_path: Path, token: str) -> Iterator[Served]:
    """``rollout serve`` on a free loopback port with one token (named ``alice``); on leaving,
    it must have stopped cleanly and logged no traceback."""
    env = clean_env(ROLLOUT_TOKEN=f"alice={token}")
    with serve("--http", "127.0.0.1:0", cwd=tmp_path, env=env, token=token) as running:
        yield running
    assert running.returncode == 0, running.stderr()
    assert "Traceback" not in running.stderr()
