"""Real processes on one NATS: writes from each converge everywhere, and a process killed and
started again (memory only: it keeps nothing) reads the stream and has everything."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollout.testing import eventually
from rollout.testing.cluster import Node, wait_converged

from .nats_fixtures import namespace, nats_url  # noqa: F401  (fixtures)

StartNodes = Callable[[str, int], list[Node]]


@pytest.fixture
def start_nodes(tmp_path: Path) -> Iterator[StartNodes]:
    started: list[Node] = []

    def start(url: str, count: int) -> list[Node]:
        nodes = []
        for i in range(len(started), len(started) + count):
            node = Node(f"n{i}", tmp_path, store="memory://", listen=False, transport=url)
            started.append(node)
            nodes.append(node.start())
        for node in nodes:
            assert node.call("wait_synced", 10), node.log()
        return nodes

    yield start
    stopping = [threading.Thread(target=node.stop) for node in started]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join(30)


def test_processes_converge_and_a_restarted_one_reads_everything_back(
    nats_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    start_nodes: StartNodes,
) -> None:
    nodes = start_nodes(f"{nats_url}?namespace={namespace}", 4)
    nodes[0].call("activate", "chat")
    nodes[1].call("activate_percentage", "beta", 25)
    nodes[2].call("set_feature_data", "chat", {"owner": "web"})
    for i, node in enumerate(nodes):
        node.call("activate_user", "everyone", f"from-n{i}")
    state = wait_converged(nodes)
    assert state["everyone"]["users"] == [f"from-n{i}" for i in range(4)]
    assert state["beta"]["percentage"] == 25
    nodes[3].kill()
    nodes[0].call("activate_user", "everyone", "while-n3-was-dead")
    nodes[3].start()
    assert nodes[3].call("wait_synced", 10), nodes[3].log()
    eventually(
        lambda: nodes[3].call("active", "everyone", "while-n3-was-dead"),
        what="the restarted process has what was written while it was dead",
    )
    state = wait_converged(nodes)
    assert state["chat"]["data"] == {"owner": "web"}
