"""Membership gossip between real node processes: a node that joins through one peer becomes
known to every node, and a node gone for good is forgotten by every node and stays forgotten.

Every node is its own process (``rollout.testing.cluster``) on loopback, with a strong shared
secret and short intervals. Every wait is bounded; nothing asserts on speed.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rollout.testing import eventually
from rollout.testing.cluster import Node

FAST = 0.2  # anti-entropy interval
WAIT = 20.0  # upper bound on every wait; the happy path is far below it
MEMBER_TIMEOUT = 4.0  # seconds a learned member may stay unreachable before it is forgotten


@contextlib.contextmanager
def nodes_in(directory: Path, **options: Any) -> Iterator[Any]:
    """A factory of nodes sharing one strong secret; every node it made is stopped at the end."""
    secret = secrets.token_urlsafe(32)
    made: list[Node] = []

    def node(name: str, peers: list[Node] = [], **extra: Any) -> Node:  # noqa: B006 (read only)
        made.append(
            Node(
                name,
                directory,
                peers=[p.address for p in peers],
                secret=secret,
                anti_entropy_interval=FAST,
                **{**options, **extra},
            )
        )
        return made[-1]

    try:
        yield node
    finally:
        for each in made:
            each.stop()


def members(node: Node) -> dict[str, str]:
    """The node's member table: address -> state."""
    return {m["address"]: m["state"] for m in node.call("members")}


def connected_to(node: Node) -> set[str]:
    return {address for address, state in members(node).items() if state == "connected"}


def wait_full_mesh(nodes: list[Node], timeout: float = WAIT) -> None:
    """Until every node lists every other as connected (AssertionError naming who is missing)."""
    deadline = time.monotonic() + timeout
    while True:
        missing = {
            node.name: sorted({o.address for o in nodes if o is not node} - connected_to(node))
            for node in nodes
        }
        missing = {name: gap for name, gap in missing.items() if gap}
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no full mesh within {timeout} s; not connected: {missing}")
        time.sleep(0.05)


def test_a_node_that_joins_through_one_seed_becomes_known_to_all(tmp_path: Path) -> None:
    with nodes_in(tmp_path) as node:
        a = node("a").start()
        b = node("b", [a]).start()
        c = node("c", [a, b]).start()
        wait_full_mesh([a, b, c])
        d = node("d", [a]).start()  # knows only a
        wait_full_mesh([a, b, c, d])
        d.call("activate", "from-d")
        # Every node d knows of (a, b and c: its peers now, not just a's) acknowledged it.
        assert d.call("wait_synced", WAIT)
        assert all(other.call("active", "from-d") for other in (a, b, c))


def test_nodes_that_join_through_one_seed_at_once_find_each_other(tmp_path: Path) -> None:
    """The seed's hello to each newcomer can list only the nodes it heard from before; nodes
    that arrive together learn of each other only from what the seed says afterwards."""
    with nodes_in(tmp_path) as node:
        seed = node("seed").start()
        seed.pause()  # the newcomers' connections wait in its backlog, and arrive together
        newcomers = [node(f"n{i}", [seed]).start() for i in range(3)]
        seed.resume()
        wait_full_mesh([seed, *newcomers])


def test_a_node_gone_for_good_is_forgotten_by_all_and_not_spread_again(tmp_path: Path) -> None:
    with nodes_in(tmp_path, member_timeout=MEMBER_TIMEOUT) as node:
        a = node("a").start()
        b = node("b", [a]).start()
        c = node("c", [a]).start()
        gone = node("gone", [a]).start()
        wait_full_mesh([a, b, c, gone])
        gone.kill()
        for each in (a, b, c):
            # It is still remembered (down): exactly what gossip must not hand on.
            _wait(lambda each=each: members(each).get(gone.address) == "down", f"{each.name}")
        late = node("late", [b]).start()  # joins while the others still remember `gone`
        sightings: list[str] = []

        def forgotten_everywhere() -> bool:
            tables = {n.name: members(n) for n in (a, b, c, late)}
            sightings.extend(name for name, t in tables.items() if gone.address in t)
            return not any(gone.address in t for t in tables.values())

        wait_full_mesh([a, b, c, late])
        _wait(forgotten_everywhere, "every node forgets the dead node", timeout=WAIT)
        assert "late" not in sightings  # nobody vouched for a node nobody could reach
        # Another join makes every node gossip again: the dead node does not come back.
        last = node("last", [c]).start()
        wait_full_mesh([a, b, c, late, last])
        for each in (a, b, c, late, last):
            assert gone.address not in members(each), each.name


def test_learn_members_false_neither_shares_nor_learns(tmp_path: Path) -> None:
    with nodes_in(tmp_path) as node:
        seed = node("seed").start()
        seed.pause()
        shy = [node(f"shy{i}", [seed], learn_members=False).start() for i in range(2)]
        seed.resume()
        _wait(lambda: connected_to(seed) == {n.address for n in shy}, "the seed connects both")
        # A write on one reaches the other through the seed's anti-entropy: by then the seed
        # has gossiped (it does learn), and the shy nodes ignored it.
        shy[0].call("activate", "relayed")
        _wait(lambda: shy[1].call("active", "relayed"), "the write is relayed")
        for each in shy:
            assert set(members(each)) == {seed.address}, each.name


def _wait(condition: Any, what: str, timeout: float = WAIT) -> None:
    eventually(condition, timeout=timeout, what=what, interval=0.05)
