"""Bad clocks, NTP steps and restarts against the promise "one bad clock
never stops the healthy majority; nothing acknowledged is lost or silently applied later".

Real node processes (rollout.testing.cluster), real sockets, real SQLite files. Every test
records the writes a node acknowledged and checks at the end that each is on every node, and
that nothing refused was applied later over a later acknowledged write.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from rollout.testing import eventually
from rollout.testing.cluster import Cluster, Node, NodeError

SECRET = secrets.token_urlsafe(32)
FLAG = "log"


def clock(node: Node) -> dict[str, Any]:
    verdict: dict[str, Any] = node.call("stats")["sync"]["clock"]
    return verdict


def users_of(node: Node) -> set[str]:
    return set(node.call("get", FLAG)["users"])


def missing_on(nodes: list[Node], acknowledged: set[str]) -> dict[str, set[str]]:
    return {n.name: acknowledged - users_of(n) for n in nodes if acknowledged - users_of(n)}


def restart(cluster: Cluster, index: int, **options: Any) -> Node:
    """Stop node ``index`` and start it again on the same port and SQLite file."""
    old = cluster[index]
    old.stop()
    new = Node(
        old.name,
        old.log_path.parent,
        port=int(old.address.rpartition(":")[2]),
        store=old.store,
        peers=old.peers,
        secret=SECRET,
        **options,
    )
    cluster.nodes[index] = new
    return new.start()


def test_a_replica_whose_clock_steps_back_gets_the_majoritys_writes_once_fixed(
    tmp_path: Path,
) -> None:
    """A healthy node of three whose clock NTP steps two minutes back while running: the
    majority's writes (stamped by right clocks) now look like the future to it. It is judged
    an outlier and refuses writes; it neither quarantines those writes nor drops them from its
    replica, so once NTP steps its clock right it has every acknowledged write again, with no
    operator. (Review found it moving them to the quarantine for good.)"""
    with Cluster(3, tmp_path, secret=SECRET, anti_entropy_interval=0.2) as cluster:
        majority, stepped = [cluster[0], cluster[1]], cluster[2]
        acknowledged = set()
        cluster[0].call("activate_user", FLAG, "before-step")
        acknowledged.add("before-step")
        cluster.wait_until(lambda n: "before-step" in users_of(n))

        stepped.call("set_clock_offset", -120_000)  # NTP steps it back two minutes
        cluster[0].call("activate_user", FLAG, "during-step")  # the majority keeps writing
        acknowledged.add("during-step")
        eventually(lambda: clock(stepped)["state"] == "outlier", 30, "the stepped node judged")
        for node in majority:
            assert clock(node)["writable"], clock(node)

        stepped.call("set_clock_offset", 0)  # NTP steps it right again
        eventually(lambda: clock(stepped)["state"] == "ok", 30, "the stepped node fixed")
        cluster[1].call("activate_user", FLAG, "after-fix")
        acknowledged.add("after-fix")
        try:
            eventually(
                lambda: not missing_on(cluster.nodes, acknowledged),
                20,
                "every acknowledged write on every node",
            )
        except AssertionError:
            held = [(q["key"], q["origin"]) for q in stepped.call("quarantined")]
            raise AssertionError(
                f"missing: {missing_on(cluster.nodes, acknowledged)}; the stepped node holds "
                f"the majority's writes in its quarantine: {held}"
            ) from None


def test_a_write_right_after_a_clock_jump_is_refused_until_peers_judge_it(
    tmp_path: Path,
) -> None:
    """NTP steps a confirmed node's clock ahead; a write in the instant after it, before the
    peers' next verdict, is refused (ClockSkewError names the jump) rather than acknowledged
    with a stamp the cluster would refuse. (Review found it acknowledged.)"""
    with Cluster(3, tmp_path, secret=SECRET, anti_entropy_interval=1.0) as cluster:
        fast = cluster[2]
        fast.call("set_clock_offset", 3_600_000)
        # "jumped" unless the peers' next verdict came first (then "ahead of the majority").
        with pytest.raises(NodeError, match=r"jumped|ahead of the majority") as refused:
            fast.call("activate_user", FLAG, "from-the-future")
        assert refused.value.kind == "ClockSkewError"
        # Then the peers judge it: an outlier, still refused, with the reason.
        eventually(lambda: clock(fast)["state"] == "outlier", 30, "the fast node judged")
        with pytest.raises(NodeError, match="ahead of the majority"):
            fast.call("activate_user", FLAG, "from-the-future")
        assert all("from-the-future" not in users_of(n) for n in cluster)


def test_a_client_on_the_bad_machine_does_not_vote(
    tmp_path: Path,
) -> None:
    """Three nodes, one an hour fast; a client on the fast machine (as `rollout --peers FAST
    members` run there, which does not listen) connects to the healthy nodes. Only nodes that
    listen vote, so the healthy pair keeps its majority and keeps writing. (Review found a tie
    that stopped both.)"""
    with Cluster(
        3, tmp_path, secret=SECRET, anti_entropy_interval=0.2, clock_offset_ms=[0, 0, 3_600_000]
    ) as cluster:
        healthy, fast = cluster.nodes[:2], cluster[2]
        eventually(lambda: clock(fast)["state"] == "outlier", 30, "the fast node judged")
        tool = Node(
            "tool",
            tmp_path,
            peers=[fast.address],
            secret=SECRET,
            clock_offset_ms=3_600_000,
            listen=False,
            anti_entropy_interval=0.2,
        )
        try:
            tool.start()
            tool_node = tool.node_id

            def tool_connected(node: Node) -> bool:
                return any(m["node"] == tool_node for m in node.call("members"))

            eventually(lambda: all(tool_connected(n) for n in healthy), 30, "the tool connected")
            healthy[0].call("wait_synced", 10)  # a few digest rounds with the tool connected
            assert all(clock(n)["voters"] == 3 for n in healthy)  # a client does not vote
            refused = {}
            for node in healthy:
                try:
                    node.call("activate_user", FLAG, node.name)
                except NodeError as error:
                    refused[node.name] = error.message
            assert not refused, f"the healthy majority stopped by one bad machine: {refused}"
        finally:
            tool.stop()


def test_a_node_rebooted_behind_gets_its_store_back_once_ntp_syncs(
    tmp_path: Path,
) -> None:
    """A healthy node of three restarts on its SQLite file with its clock two minutes behind (an
    RTC not yet synced), then NTP steps it right while it runs. What its store holds looks like
    the future to it at load: kept aside until the peers judge its clock, then merged, so every
    acknowledged write is back. (Review found it quarantining its own store.)"""
    with Cluster(3, tmp_path, secret=SECRET, anti_entropy_interval=0.2) as cluster:
        acknowledged = set()
        for node in cluster:
            node.call("activate_user", FLAG, f"{node.name}-before")
            acknowledged.add(f"{node.name}-before")
        cluster.wait_until(lambda n: acknowledged <= users_of(n))
        rebooted = restart(cluster, 2, anti_entropy_interval=0.2, clock_offset_ms=-120_000)
        rebooted.call("set_clock_offset", 0)  # chrony syncs after boot
        eventually(lambda: clock(rebooted)["state"] == "ok", 30, "the rebooted node judged ok")
        cluster[0].call("activate_user", FLAG, "after-reboot")
        acknowledged.add("after-reboot")
        try:
            eventually(
                lambda: not missing_on(cluster.nodes, acknowledged), 20, "every write everywhere"
            )
        except AssertionError:
            held = [(q["key"], q["origin"]) for q in rebooted.call("quarantined")]
            raise AssertionError(
                f"missing: {missing_on(cluster.nodes, acknowledged)}; held: {held}"
            ) from None


def test_clocks_40_s_apart_write_nothing_until_ntp_then_everything_arrives(tmp_path: Path) -> None:
    """Clocks at -20 s, 0 and +20 s with max_offset 30 s: were all three judged "ok", the -20 s
    node would hold the +20 s node's writes as 40 s "from the future", for good. Clocks agree
    within half of max_offset, so two writing nodes are never more than max_offset apart: here
    nobody writes until NTP brings the clocks together, and then every write reaches everyone
    and nothing is quarantined."""
    with Cluster(
        3, tmp_path, secret=SECRET, anti_entropy_interval=0.2, clock_offset_ms=[-20_000, 0, 20_000]
    ) as cluster:
        eventually(
            lambda: {clock(n)["state"] for n in cluster} == {"outlier"}, 30, "all judged outliers"
        )
        for node in cluster:
            with pytest.raises(NodeError, match="ClockSkewError"):
                node.call("activate_user", FLAG, node.name)
        for node in cluster:
            node.call("set_clock_offset", 0)  # NTP brings every clock to the right time
        eventually(lambda: {clock(n)["state"] for n in cluster} == {"ok"}, 30, "all judged ok")
        acknowledged = set()
        for node in cluster:
            node.call("activate_user", FLAG, node.name)
            acknowledged.add(node.name)
        eventually(
            lambda: not missing_on(cluster.nodes, acknowledged), 20, "every write everywhere"
        )
        assert all(node.call("quarantined") == [] for node in cluster)
