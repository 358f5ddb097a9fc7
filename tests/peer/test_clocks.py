"""Clocks judged by the majority, with real node processes: one bad clock stops only itself.

Each node's clock is this machine's plus an offset (``clock_offset_ms``), which a test can step
while the node runs (its ``set_clock_offset`` command, as NTP would). max_offset is 30 s.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rollout.testing import eventually
from rollout.testing.cluster import Cluster, Node, NodeError, free_port

SECRET = secrets.token_urlsafe(32)
FAST = 0.2  # anti-entropy interval: clocks are compared (and writes repaired) every ~0.2 s
SLOW = -120_000  # two minutes behind
AHEAD = 3_600_000  # an hour ahead
FLAG = "log"  # every acknowledged write adds one user to it


def clock(node: Node) -> dict[str, Any]:
    """The verdict on the node's clock: ``stats()["sync"]["clock"]``."""
    verdict: dict[str, Any] = node.call("stats")["sync"]["clock"]
    return verdict


def states(nodes: Sequence[Node]) -> list[str]:
    return [clock(node).get("state", "?") for node in nodes]


def wait_states(nodes: Sequence[Node], expected: list[str]) -> None:
    eventually(
        lambda: states(nodes) == expected,
        timeout=30,
        what=f"clock states {expected} (now {states(nodes)})",
    )


def users_of(node: Node) -> set[str]:
    return set(node.call("get", FLAG)["users"])


def write(node: Node, user: str) -> bool:
    """One write; True if the node acknowledged it, False if it refused it for its clock."""
    try:
        node.call("activate_user", FLAG, user)
    except NodeError as refused:
        kind = refused.kind
    else:
        return True
    assert kind == "ClockSkewError"
    return False


def refusal(node: Node) -> str:
    with pytest.raises(NodeError) as refused:
        node.call("activate_user", FLAG, f"refused-by-{node.name}")
    assert refused.value.kind == "ClockSkewError"
    return refused.value.message


def wait_everywhere(nodes: Sequence[Node], acknowledged: set[str]) -> None:
    eventually(
        lambda: all(acknowledged <= users_of(node) for node in nodes),
        timeout=30,
        what="every acknowledged write on every node",
    )


def member(node: Node, other: Node) -> dict[str, Any]:
    described: list[dict[str, Any]] = node.call("members")
    return next(m for m in described if m["address"] == other.address)


@contextmanager
def cluster_of(tmp_path: Path, offsets: list[int]) -> Iterator[Cluster]:
    with Cluster(
        len(offsets),
        tmp_path,
        clock_offset_ms=offsets,
        secret=SECRET,
        anti_entropy_interval=FAST,
    ) as cluster:
        yield cluster


@pytest.mark.parametrize(("offset", "says"), [(SLOW, "behind"), (AHEAD, "ahead of")])
def test_one_bad_clock_of_three_stops_only_itself(tmp_path: Path, offset: int, says: str) -> None:
    with cluster_of(tmp_path, [0, 0, offset]) as cluster:
        healthy, bad = cluster.nodes[:2], cluster[2]
        wait_states(cluster.nodes, ["ok", "ok", "outlier"])
        acknowledged = set()
        for i in range(5):
            for node in healthy:
                user = f"{node.name}-{i}"
                assert write(node, user), f"{node.name} refused a write: {clock(node)}"
                acknowledged.add(user)
        message = refusal(bad)
        found = re.search(rf"is (\d+) ms {says} the majority of its peers", message)
        assert found, message
        # The measured offset also holds the one-way delay between processes: a few ms.
        assert abs(int(found.group(1)) - abs(offset)) < 5_000, message
        wait_everywhere(healthy, acknowledged)
        for node in healthy:
            assert clock(node)["disagreeing"] == [bad.address]
            assert member(node, bad)["clock_agrees"] is False
            assert member(node, healthy[0] if node is healthy[1] else healthy[1])["clock_agrees"]
        assert bad.call("stats")["sync"]["clock_skew"] == clock(bad)["problem"]


def test_five_nodes_one_slow_one_fast_then_fixed_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    with cluster_of(tmp_path, [0, 0, 0, SLOW, AHEAD]) as cluster:
        healthy, slow, fast = cluster.nodes[:3], cluster[3], cluster[4]
        wait_states(cluster.nodes, ["ok", "ok", "ok", "outlier", "outlier"])
        acknowledged: set[str] = set()
        for i in range(3):
            for node in cluster:
                if write(node, f"{node.name}-{i}"):
                    acknowledged.add(f"{node.name}-{i}")
        assert acknowledged == {f"n{n}-{i}" for n in range(3) for i in range(3)}
        assert "behind" in refusal(slow)
        assert "ahead of" in refusal(fast)
        wait_everywhere(healthy, acknowledged)

        # The fixes: the slow one's clock is stepped while it runs (NTP), the fast one is
        # restarted with a correct clock on the same SQLite file.
        slow.call("set_clock_offset", 0)
        fast.stop()
        fixed = Node(
            fast.name,
            tmp_path,
            port=int(fast.address.rpartition(":")[2]),
            store=fast.store,
            peers=fast.peers,
            secret=SECRET,
            anti_entropy_interval=FAST,
        )  # clock_offset_ms=0
        cluster.nodes[4] = fast = fixed
        fast.start()
        wait_states(cluster.nodes, ["ok"] * 5)
        for node in (slow, fast):
            assert write(node, f"{node.name}-fixed")
            acknowledged.add(f"{node.name}-fixed")
        wait_everywhere(cluster.nodes, acknowledged)
        state = cluster.wait_converged()
        assert set(state[FLAG]["users"]) == acknowledged  # nothing refused got in either


def test_two_nodes_that_disagree_both_refuse_then_both_write_once_fixed(tmp_path: Path) -> None:
    with cluster_of(tmp_path, [0, SLOW]) as cluster:
        wait_states(cluster.nodes, ["no_majority", "no_majority"])
        for node in cluster:
            message = refusal(node)
            assert "no majority" in message
            assert "add a node" in message
            assert "Correct the wrong clock" in message
            other = cluster[1] if node is cluster[0] else cluster[0]
            assert clock(node)["disagreeing"] == [other.address]
            assert node.call("stats")["sync"]["clock"]["writable"] is False
        cluster[1].call("set_clock_offset", 0)
        wait_states(cluster.nodes, ["ok", "ok"])
        for node in cluster:
            assert write(node, node.name)
        wait_everywhere(cluster.nodes, {"n0", "n1"})


def test_a_node_whose_peers_are_down_refuses_until_one_confirms_its_clock(
    tmp_path: Path,
) -> None:
    port = free_port()
    peer = Node("peer", tmp_path, port=port, secret=SECRET, anti_entropy_interval=FAST)
    alone = Node(
        "alone",
        tmp_path,
        peers=[peer.address],
        secret=SECRET,
        anti_entropy_interval=FAST,
    )
    try:
        alone.start()
        assert clock(alone)["state"] == "unconfirmed"
        message = refusal(alone)
        assert "not confirmed" in message
        assert "no peer is connected" in message
        peer.start()
        eventually(lambda: clock(alone)["state"] == "ok", timeout=30, what="confirmed")
        assert write(alone, "after")
        # Confirmed once, it keeps writing when left alone.
        peer.stop()
        eventually(lambda: not alone.call("stats")["sync"]["peers_connected"], timeout=30)
        assert write(alone, "alone-again")
        assert clock(alone)["state"] == "ok"
    finally:
        alone.stop()
        peer.stop()


def test_a_node_whose_only_configured_peer_is_itself_writes(tmp_path: Path) -> None:
    # The same list of every node's address, given to every node: here a cluster of one.
    port = free_port()
    address = f"127.0.0.1:{port}"
    node = Node("only", tmp_path, port=port, peers=[address], secret=SECRET)
    try:
        node.start()
        node.wait_clock_judged()
        assert clock(node)["state"] == "ok"
        assert write(node, "me")
    finally:
        node.stop()
