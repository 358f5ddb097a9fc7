"""Real node processes for testing a peer-to-peer cluster: start, command, pause, kill, restart.

Each :class:`Node` is a separate Python process running a ``Rollout`` with a peer transport
(``python -m rollout.testing._node_process``), driven over its stdin/stdout with one JSON object per
line. Tests and benchmarks use it to make real sockets between real processes::

    with Cluster(3, tmp_path) as cluster:
        cluster[0].call("activate", "chat")
        cluster.wait_until(lambda node: node.call("active", "chat"))

Commands are the ``Rollout`` methods (``node.call("activate_user", "chat", 42)``) plus
``get`` (a flag's ``to_dict()``), ``state`` (every flag's ``to_dict()``), ``export`` (text),
``stats``, ``members``, ``wait_synced``, ``watch`` / ``seen`` (monotonic time at which a flag first
became active, for latency measurements), ``history`` and ``quarantined`` (as dicts),
``set_clock_offset`` (move the node's wall clock that many ms from the real one, at once: an NTP
step), and ``exit``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["DEFAULT_SECRET", "Cluster", "Node", "NodeError", "free_port", "wait_converged"]

_READY_TIMEOUT = 30.0
#: The secret every :class:`Node` uses unless told otherwise: strong (weak ones are refused),
#: and fresh for each test process.
DEFAULT_SECRET = secrets.token_urlsafe(32)


class NodeError(Exception):
    """A command failed inside the node (``kind`` is the exception's class name)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


#: The ports free_port gave out lately, not given again (bounded: a long test run asks often).
_GIVEN: collections.deque[int] = collections.deque(maxlen=1024)


def free_port() -> int:
    """A free loopback port for a node to bind later, outside the kernel's ephemeral range.

    An ephemeral port (``bind(0)``) freed for later use can be taken meanwhile by any outgoing
    connection (proxies, other nodes dialling), and the node then dies with "address already
    in use". The kernel never hands out ports below the ephemeral range, so only an explicit
    bind can take one of those. Nor is a port given twice in a while: it stays free until its
    node binds it, so a list of addresses drawn at random held, now and then, one port twice
    (a 20-node mesh of the bench died of it).
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for _ in range(200 if low > 2048 else 0):
        port = random.randrange(max(1024, low // 2), low)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.append(port)
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        ephemeral: int = sock.getsockname()[1]
        return ephemeral


class Node:
    """One node process. ``listen`` gets a fixed free port, so a restart keeps its address."""

    #: What the interpreter runs, before the node's options: a test may run a node of its own
    #: (a script that calls ``rollout.testing._node_process.main`` with a store of its own).
    program: Sequence[str] = ("-m", "rollout.testing._node_process")

    def __init__(
        self,
        name: str,
        directory: Path,
        *,
        peers: Sequence[str] = (),
        secret: str | None = DEFAULT_SECRET,
        learn_members: bool = True,
        clock_offset_ms: int = 0,
        anti_entropy_interval: float = 1.0,
        max_offset: float | None = None,
        member_timeout: float = 60.0,
        store: str | None = None,
        port: int | None = None,
        listen: bool = True,
        transport: str | None = None,
    ) -> None:
        self.name = name
        self.transport = transport  # a transport URL (nats://...), with listen=False
        # Without `listen` (and peers) the node has no peer transport: a store that brings its
        # own (Redis pub/sub) replicates instead.
        self.listen = listen
        self.address = f"127.0.0.1:{port or free_port()}" if listen else ""
        self.peers = list(peers)
        self.store = store or f"sqlite:///{directory / f'{name}.db'}"
        self._options = {
            "secret": secret,
            "learn_members": learn_members,
            "clock_offset_ms": clock_offset_ms,
            "anti_entropy_interval": anti_entropy_interval,
            "max_offset": max_offset,
            "member_timeout": member_timeout,
        }
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self.node_id: str | None = None
        self.log_path = directory / f"{name}.log"

    def start(self) -> Node:
        arguments = [
            sys.executable, *self.program,
            "--store", self.store, "--listen", self.address,  # "": no peer transport
            "--peers", ",".join(self.peers),
            "--clock-offset-ms", str(self._options["clock_offset_ms"]),
            "--anti-entropy-interval", str(self._options["anti_entropy_interval"]),
            "--member-timeout", str(self._options["member_timeout"]),
        ]  # fmt: skip
        if self.transport is not None:
            arguments.append(f"--transport={self.transport}")
        if self._options["max_offset"] is not None:
            arguments += ["--max-offset", str(self._options["max_offset"])]
        if self._options["secret"] is not None:
            # One argument: a secret may start with "-" (token_urlsafe makes such).
            arguments.append(f"--secret={self._options['secret']}")
        if not self._options["learn_members"]:
            arguments.append("--no-learn-members")
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        self._lines = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, args=(self.process, self._lines), daemon=True
        )
        self._reader.start()
        ready = self._next_line(_READY_TIMEOUT)
        self.node_id = json.loads(ready)["ready"]["node"]
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
            log = self.log_path.read_text()[-2000:]
            raise NodeError("Exited", f"node {self.name} exited; its log ends:\n{log}")
        return line

    def wait_clock_judged(self, timeout: float = _READY_TIMEOUT) -> None:
        """Until its clock is no longer unconfirmed (it may still be refused: an outlier). A node
        with peers writes once a peer confirmed its clock: call this before writing at once."""
        from .eventually import eventually

        def judged() -> bool:
            clock = (self.call("stats")["sync"] or {}).get("clock") or {}
            return bool(clock.get("state") != "unconfirmed")

        eventually(judged, timeout, f"node {self.name}'s clock judged by a peer")

    def log(self) -> str:
        """The end of the node's log (stderr), for assertion messages."""
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def call(self, op: str, *args: Any, timeout: float = 20.0, **kwargs: Any) -> Any:
        """Run ``op`` in the node and return its result (raises NodeError if it raised)."""
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

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush beyond what was committed."""
        self._signal(signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(NodeError, TimeoutError, OSError):
                self.resume()
                self.call("exit", timeout=timeout)
        self._reap()

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def _reap(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        # The reader thread owns stdout: it reads to the end the dead process left and closes
        # nothing, so closing stdout here only after it finished never races its read.
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(timeout=10)
        streams = [process.stdin] + (
            [process.stdout] if reader is None or not reader.is_alive() else []
        )
        for stream in streams:
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Cluster:
    """``size`` nodes that all list each other (or the first one) as peers."""

    def __init__(self, size: int, directory: Path, *, start: bool = True, **options: Any) -> None:
        """``clock_offset_ms``: one for every node, or a list of one per node. With ``start``,
        returns once every node's clock has been judged by its peers."""
        directory.mkdir(parents=True, exist_ok=True)
        offsets = options.pop("clock_offset_ms", 0)
        offsets = offsets if isinstance(offsets, Sequence) else [offsets] * size
        if len(offsets) != size:
            raise ValueError(f"clock_offset_ms needs one offset per node ({size}): {offsets!r}")
        ports = [free_port() for _ in range(size)]
        addresses = [f"127.0.0.1:{port}" for port in ports]
        self.nodes = [
            Node(f"n{i}", directory, port=ports[i], clock_offset_ms=offsets[i],
                 peers=[a for a in addresses if a != addresses[i]], **options)
            for i in range(size)
        ]  # fmt: skip
        if start:
            for node in self.nodes:
                node.start()
            self.wait_clocks_judged()

    def wait_clocks_judged(self, timeout: float = _READY_TIMEOUT) -> None:
        """Until no running node's clock is unconfirmed (see :meth:`Node.wait_clock_judged`)."""
        for node in self.running():
            node.wait_clock_judged(timeout)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def wait_until(
        self,
        condition: Callable[[Node], Any],
        *,
        nodes: Sequence[Node] | None = None,
        timeout: float = 20.0,
    ) -> None:
        """Until ``condition(node)`` is truthy for every node; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        pending = list(nodes if nodes is not None else self.running())
        while pending:
            pending = [node for node in pending if not condition(node)]
            if pending and time.monotonic() > deadline:
                names = ", ".join(node.name for node in pending)
                raise AssertionError(f"not true within {timeout} s on: {names}")
            if pending:
                time.sleep(0.05)

    def wait_converged(self, timeout: float = 30.0) -> dict[str, Any]:
        """Until every running node holds the same registers; returns their common state."""
        return wait_converged(self.running(), timeout)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_converged(nodes: Sequence[Node], timeout: float = 30.0) -> dict[str, Any]:
    """Until every one of ``nodes`` holds the same registers (equal ``export()``).

    Returns their common state: flag name -> ``Feature.to_dict()``.
    """
    deadline = time.monotonic() + timeout
    while True:
        exports = {node.name: node.call("export") for node in nodes}
        if len(set(exports.values())) == 1:
            state: dict[str, Any] = nodes[0].call("state")
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes did not converge within {timeout} s: {exports}")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Run one node process (kept here too: ``python -m rollout.testing.cluster`` still works)."""
    from ._node_process import main as node_main

    return node_main(argv)


if __name__ == "__main__":
    sys.exit(main())
