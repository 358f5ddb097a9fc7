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
        try:
            fast.call("activate_user", FLAG, "from-the-future")
            acknowledged = True
        except NodeError as refused:
            kind = refused.kind
            acknowledged = False
        else:
            kind = ""
        assert kind in {"", "ClockSkewError"}, kind
        synced = fast.call("wait_synced", 5.0) if acknowledged else None
        assert not acknowledged, (
            "a write stamped an hour ahead was acknowledged by the node whose clock had just "
            f"stepped (wait_synced() then said {synced})"
        )


def test_a_quarantined_register_stays_refused_after_the_healthy_nodes_restart(
    tmp_path: Path,
) -> None:
    """A register from the future held by the healthy nodes stays refused after they restart,
    even once real time has passed its stamp: the store keeps what was judged. (Review found it
    applied late over a later acknowledged write after a restart.)"""
    with Cluster(3, tmp_path, secret=SECRET, anti_entropy_interval=0.2, max_offset=2.0) as cluster:
        fast = cluster[2]
        fast.call("set_clock_offset", 8_000)
        fast.call("activate_percentage", "chat", 100)  # acknowledged, stamped +8 s
        eventually(lambda: clock(fast)["state"] == "outlier", 30, "the fast node judged")
        eventually(lambda: cluster[0].call("quarantined"), 30, "the fast write quarantined")
        bomb = cluster[0].call("quarantined")[0]["timestamp"][0]
        cluster[0].call("activate_percentage", "chat", 10)  # acknowledged, later in real time
        cluster.wait_until(
            lambda n: n.call("get", "chat")["percentage"] == 10, nodes=cluster.nodes[:2]
        )
        # Real time catches up with the bomb (max_offset 2 s); the fast node is still unfixed.
        eventually(lambda: time_ms() > bomb - 1_000, 30, "real time past the bomb - max_offset")
        for index in (0, 1):  # a deploy restarts the healthy nodes, one after the other
            restart(cluster, index, anti_entropy_interval=0.2, max_offset=2.0)
        cluster.wait_clocks_judged()
        went_off: list[Any] = []

        def bomb_went_off() -> bool:
            went_off[:] = [n.call("get", "chat")["percentage"] for n in cluster.nodes[:2]]
            return went_off != [10, 10]

        try:
            eventually(bomb_went_off, 5, "the quarantined register applied late")
        except AssertionError:
            return  # held: what the promise says
        raise AssertionError(
            f"the healthy nodes now say percentage {went_off}: the +8 s register they had "
            "quarantined was applied after their restart, over the later acknowledged 10"
        )


def time_ms() -> int:
    import time

    return int(time.time() * 1000)


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


def test_an_acknowledged_write_survives_a_clock_fix_and_full_restarts(
    tmp_path: Path,
) -> None:
    """A write acknowledged by a node whose clock ran ahead is never lost silently: through an
    NTP fix and a stop and start of every node, it is on a node or held in a quarantine (kept by
    the store). (Review found it on no node and in no quarantine.)"""
    with Cluster(3, tmp_path, secret=SECRET, anti_entropy_interval=1.0) as cluster:
        fast = cluster[2]
        fast.call("set_clock_offset", 3_600_000)
        try:
            fast.call("activate_user", FLAG, "fast-acknowledged")
        except NodeError:
            return  # refused: nothing acknowledged, nothing to lose (the race is closed)
        eventually(lambda: clock(fast)["state"] == "outlier", 30, "the fast node judged")
        fast.call("set_clock_offset", 0)  # NTP steps it right
        eventually(lambda: clock(fast)["state"] == "ok", 30, "the fast node fixed")
        for node in cluster:  # a full restart: every node down, then up on its SQLite file
            node.stop()
        for index in range(3):
            restart(cluster, index, anti_entropy_interval=1.0)
        cluster.wait_clocks_judged()
        cluster.wait_converged()
        where = {
            n.name: ("fast-acknowledged" in users_of(n), [q["key"] for q in n.call("quarantined")])
            for n in cluster
        }
        assert any(on or held for on, held in where.values()), (
            f"an acknowledged write is gone from every node and every quarantine: {where}"
        )


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
