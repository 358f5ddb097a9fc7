"""A peer's delta is applied and announced before the receiver commits it, and that loses nothing.

The writer commits a change before it sends it, so a receiver shows it (checks, subscribers)
and only then commits it. The window between the two is made to last with a node whose commits
of ``gated-*`` flags never finish (tests/peer/gated_node.py), then closed by SIGKILL, as a crash
would: the file lacks the change, and the restarted node gets it back from its peers. The
writer's own write is still on its disk the moment ``activate()`` returns. And when a commit
fails for real (the file is moved away), the change stays shown, waits, is committed once the
file is back, and no exchange is acknowledged while it waits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from rollout import Rollout
from rollout.stores import SQLiteStore
from rollout.testing import eventually
from rollout.testing.cluster import Node, free_port

from .gated_node import GatedNode
from .test_cluster import FAST, WAIT, make_cluster, peer_transport, running, wait_converged


@contextlib.contextmanager
def alone_on(node: Node, directory: Path) -> Iterator[Node]:
    """A node with no peers on ``node``'s SQLite file: what the file alone holds."""
    alone = Node(f"{node.name}-alone", directory, port=free_port(), store=node.store)
    with running(alone):
        alone.start()
        yield alone


def test_a_receiver_killed_before_committing_a_delta_it_showed_gets_it_back(
    tmp_path: Path,
) -> None:
    # Anti-entropy at its default pace here: the change must reach the victim as the delta,
    # which the writer sends at once, not in a digest exchange that happens to run just then.
    with make_cluster(2, tmp_path) as cluster:
        writer, other = cluster
        victim = GatedNode(
            "victim", tmp_path, gate=tmp_path / "gate", peers=[writer.address, other.address]
        )
        with running(victim):
            victim.start()
            victim.wait_clock_judged()
            writer.call("activate_user", "before", "a")
            eventually(lambda: victim.call("active", "before", "a"), WAIT, "the victim syncs")

            writer.call("activate", "gated-change")
            eventually(victim.entered.exists, WAIT, "the victim starts to commit the change")
            # Inside the window: committed nowhere on the victim, yet already shown there, and
            # its subscribers told.
            assert victim.entered.read_text() == "gated-change"
            assert victim.call("active", "gated-change")
            assert victim.call("seen", "gated-change") is not None
            assert other.call("active", "gated-change")  # the third node, straight from the writer
            victim.kill()

        # The window was real: the victim's file alone does not have the change.
        with alone_on(victim, tmp_path) as alone:
            on_disk = alone.call("features")
        assert "before" in on_disk
        assert "gated-change" not in on_disk

        # Restarted on the same file, at the same address, it gets the change back from its
        # peers, and this time commits it.
        restarted = Node(
            "victim",
            tmp_path,
            port=int(victim.address.rpartition(":")[2]),
            peers=[writer.address, other.address],
            anti_entropy_interval=FAST,
            store=victim.store,
        )
        with running(restarted):
            restarted.start()
            state = wait_converged([writer, other, restarted])
            assert state["gated-change"]["percentage"] == 100.0
            assert state["before"]["users"] == ["a"]
            assert restarted.call("wait_synced", WAIT)
        with alone_on(restarted, tmp_path) as alone:
            assert alone.call("active", "gated-change")
            assert alone.call("active", "before", "a")


def test_a_writer_killed_right_after_activate_returned_has_the_write_on_disk(
    tmp_path: Path,
) -> None:
    with make_cluster(2, tmp_path, anti_entropy_interval=FAST) as cluster:
        writer = cluster[0]
        for i in range(5):
            writer.call("activate_user", "returned", i)
            writer.kill()  # at once: no peer, no later commit, only what the call committed
            with alone_on(writer, tmp_path) as alone:
                assert alone.call("active", "returned", i)
                assert alone.call("get", "returned")["users"] == [str(u) for u in range(i + 1)]
            writer.start()
            writer.wait_clock_judged()


def test_a_delta_whose_commit_fails_stays_shown_and_is_committed_once_the_store_is_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "receiver.db"
    receiver = Rollout(f"sqlite:///{path}", transport=peer_transport())
    try:
        writer = Rollout(transport=peer_transport([receiver.stats()["sync"]["address"]]))
        try:
            assert writer.wait_synced(WAIT)  # connected, its clock confirmed: it may write
            writer.activate("first")
            assert writer.wait_synced(WAIT)
            moved = tmp_path / "moved.db"
            os.rename(path, moved)  # every commit of the receiver now fails (not its file)

            writer.activate("while-moved")
            eventually(lambda: receiver.active("while-moved"), WAIT, "the delta is shown")
            eventually(lambda: receiver.stats()["peer_commits_failed"] >= 1, WAIT, "it failed")
            assert receiver.stats()["uncommitted"] >= 1
            # An acknowledged exchange means "stored": none while the change cannot be.
            assert not writer.wait_synced(4 * FAST)

            os.rename(moved, path)
            assert writer.wait_synced(WAIT)  # stored before the receiver acknowledged
            assert receiver.stats()["uncommitted"] == 0
            stored = SQLiteStore(path, create=False)
            try:
                assert {"first", "while-moved"} <= set(stored.load())
            finally:
                stored.close()
        finally:
            writer.close()
    finally:
        receiver.close()
