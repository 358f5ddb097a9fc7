"""Drive ``redis_node.py`` processes from a test: start, call, pause, stop."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["NodeError", "RedisNode", "eventually", "wait_converged"]

_SCRIPT = Path(__file__).with_name("redis_node.py")
_READY_TIMEOUT = 30.0


class NodeError(Exception):
    """A command raised inside the node: ``kind`` is the exception's class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class RedisNode:
    """One process running ``Rollout(url)``; its stderr goes to ``<directory>/<name>.log``."""

    def __init__(self, name: str, url: str, directory: Path) -> None:
        self.name = name
        self.url = url
        self.log_path = directory / f"{name}.log"
        self.process: subprocess.Popen[str] | None = None
        self.node_id = ""
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> RedisNode:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(_SCRIPT), self.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.process, self._lines), daemon=True).start()
        self.node_id = json.loads(self._next_line(_READY_TIMEOUT))["ready"]["node"]
        return self

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def _next_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"node {self.name} did not answer within {timeout} s") from None
        if line is None:
            raise NodeError("Exited", f"node {self.name} exited; log:\n{self.log()}")
        return line

    def log(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def call(self, op: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Run ``op`` in the node; raise :class:`NodeError` if it raised there."""
        process = self.process
        if process is None or process.stdin is None:
            raise NodeError("NotRunning", f"node {self.name} is not running")
        process.stdin.write(json.dumps({"op": op, "args": args, "kwargs": kwargs}) + "\n")
        process.stdin.flush()
        answer = json.loads(self._next_line(timeout))
        if "error" in answer:
            raise NodeError(answer["error"], answer["message"])
        return answer["ok"]

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGCONT)
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.write(json.dumps({"op": "exit", "args": [], "kwargs": {}}) + "\n")
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def eventually(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Until ``condition()`` is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {what or condition}")
        time.sleep(0.02)


def wait_converged(nodes: Sequence[RedisNode], timeout: float = 20.0) -> dict[str, Any]:
    """Until every node holds the same registers; returns their common state."""
    deadline = time.monotonic() + timeout
    while True:
        exports = {node.name: node.call("export") for node in nodes}
        if len(set(exports.values())) == 1:
            state: dict[str, Any] = nodes[0].call("state")
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes did not converge within {timeout} s: {exports}")
        time.sleep(0.05)
