"""Two nodes in two network namespaces joined by a veth pair: replicate, cut the wire, heal.

Loopback proxies model partitions inside one kernel; here the nodes talk over a real (virtual)
Ethernet link, and the partition is the link going down, so TCP sees what it would see on a
network: no reset, no error, just silence. Needs root and ``ip netns``; it skips elsewhere.
Everything it creates (namespaces, the veth pair, addresses in 10.231.0.0/24) exists only inside
namespaces it made itself, and is deleted at the end, even on failure.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollout.testing import eventually
from rollout.testing.cluster import Node

from .rounds import all_rise

SECRET = secrets.token_urlsafe(32)
PORT = 7470
WAIT = 30.0  # upper bound on every wait; the happy path never gets near it


def _ip(*args: str) -> None:
    command = ["ip", *args]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Side:
    namespace: str
    device: str
    ip: str

    @property
    def address(self) -> str:
        return f"{self.ip}:{PORT}"


@pytest.fixture
def wire() -> Iterator[tuple[Side, Side]]:
    """Two fresh namespaces with one veth pair between them, deleted afterwards."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("network namespaces need Linux and root")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    token = uuid.uuid4().hex[:8]
    a = Side(f"rollout-test-{token}-a", f"rv{token}a", "10.231.0.1")
    b = Side(f"rollout-test-{token}-b", f"rv{token}b", "10.231.0.2")
    created: list[str] = []
    try:
        for side in (a, b):
            try:
                _ip("netns", "add", side.namespace)
            except RuntimeError as exc:
                if created:
                    raise
                pytest.skip(f"cannot create a network namespace here: {exc}")
            created.append(side.namespace)
        # Created directly inside the namespaces: the host's own interfaces are never touched.
        _ip(
            "link", "add", a.device, "netns", a.namespace,
            "type", "veth", "peer", "name", b.device, "netns", b.namespace,
        )  # fmt: skip
        for side in (a, b):
            _ip("-n", side.namespace, "addr", "add", f"{side.ip}/24", "dev", side.device)
            _ip("-n", side.namespace, "link", "set", "lo", "up")
            _ip("-n", side.namespace, "link", "set", side.device, "up")
        yield a, b
    finally:
        for namespace in created:  # deleting a namespace deletes its end of the veth pair
            command = ["ip", "netns", "del", namespace]
            subprocess.run(command, check=False, capture_output=True, timeout=20)


class NamespacedNode(Node):
    """A :class:`Node` whose process runs inside a network namespace, listening on its address."""

    def __init__(self, name: str, directory: Path, side: Side, peer: Side) -> None:
        super().__init__(name, directory, peers=[peer.address], secret=SECRET)
        self.side = side
        self.address = side.address

    def start(self) -> NamespacedNode:
        arguments = [
            "ip", "netns", "exec", self.side.namespace,
            sys.executable, "-m", "rollout.testing.cluster",
            "--store", self.store, "--listen", self.address,
            "--peers", ",".join(self.peers), f"--secret={SECRET}",
            "--anti-entropy-interval", "0.2",
        ]  # fmt: skip
        with self.log_path.open("a") as log:
            # `ip netns exec` execs the interpreter, so signals reach the node itself.
            self.process = subprocess.Popen(
                arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        self._lines = type(self._lines)()
        threading.Thread(target=self._read, args=(self.process, self._lines), daemon=True).start()
        self.node_id = json.loads(self._next_line(WAIT))["ready"]["node"]
        return self


def _users(node: Node, flag: str) -> set[str]:
    feature: dict[str, Any] = node.call("get", flag)
    return set(feature["users"])


def _digests_sent(node: Node) -> int:
    sent: int = node.call("stats")["sync"]["digests_sent"]
    return sent


def test_nodes_in_two_namespaces_replicate_and_heal_after_the_link_is_cut(
    wire: tuple[Side, Side], tmp_path: Path
) -> None:
    side_a, side_b = wire
    a = NamespacedNode("a", tmp_path, side_a, side_b)
    b = NamespacedNode("b", tmp_path, side_b, side_a)
    try:
        a.start()
        b.start()
        a.wait_clock_judged()
        b.wait_clock_judged()
        a.call("activate_user", "chat", 1)
        eventually(lambda: _users(b, "chat") == {"1"}, WAIT, "b sees a's write over the veth link")
        b.call("activate_user", "chat", 2)
        eventually(lambda: _users(a, "chat") == {"1", "2"}, WAIT, "a sees b's write")

        _ip("-n", side_a.namespace, "link", "set", side_a.device, "down")
        a.call("activate_user", "chat", 3)
        a.call("activate", "left")
        b.call("activate_user", "chat", 4)
        b.call("set_feature_data", "right", {"owner": "b"})
        # Several anti-entropy rounds on each side, each sending its digest into the wire (the
        # connection stays open: TCP hears nothing, not an error). Had anything crossed, the
        # first round would already have brought the other side's writes.
        eventually(
            all_rise([functools.partial(_digests_sent, a), functools.partial(_digests_sent, b)], 3),
            WAIT,
            "three anti-entropy rounds on each side of the cut",
        )
        assert _users(a, "chat") == {"1", "2", "3"}
        assert _users(b, "chat") == {"1", "2", "4"}
        assert "right" not in a.call("features")
        assert "left" not in b.call("features")

        _ip("-n", side_a.namespace, "link", "set", side_a.device, "up")
        eventually(lambda: a.call("export") == b.call("export"), WAIT, "a and b converge")
        state = a.call("state")
        assert state == b.call("state")
        assert set(state["chat"]["users"]) == {"1", "2", "3", "4"}
        assert state["left"]["percentage"] == 100
        assert state["right"]["data"] == {"owner": "b"}
    finally:
        a.stop()
        b.stop()
