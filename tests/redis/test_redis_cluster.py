"""Real processes on one Redis: writes everywhere, concurrent edits, Redis restarted empty under
running processes, and a subscriber connection killed while another process writes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rollout.testing import eventually
from rollout.testing.cluster import Node, NodeError, wait_converged

from .redis_fixtures import namespace, private_redis, redis_url  # noqa: F401  (fixtures)
from .redis_server import RedisServer, with_namespace

StartNodes = Callable[[str, int], list[Node]]


@pytest.fixture
def start_nodes(tmp_path: Path) -> Iterator[StartNodes]:
    """``start_nodes(url, count)``: processes named n0, n1, ...; all stopped after the test."""
    started: list[Node] = []

    def start(url: str, count: int) -> list[Node]:
        nodes = []
        for i in range(len(started), len(started) + count):
            # client_name passes through to redis-py: it names this process's connections.
            named = f"{url}{'&' if '?' in url else '?'}client_name=n{i}"
            node = Node(f"n{i}", tmp_path, store=named, listen=False)
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


def _connected(node: Node) -> bool:
    return bool(node.call("stats")["sync"]["connected"])


def test_a_write_on_each_process_is_seen_by_the_other_two(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    start_nodes: StartNodes,
) -> None:
    nodes = start_nodes(with_namespace(redis_url, namespace), 3)
    nodes[0].call("activate", "chat")
    nodes[1].call("activate_percentage", "beta", 25)
    nodes[2].call("set_feature_data", "chat", {"owner": "web"})
    for node in nodes:
        eventually(lambda n=node: n.call("active", "chat"), what=f"chat on {node.name}")  # type: ignore[misc]
        eventually(lambda n=node: n.call("get", "beta")["percentage"] == 25)  # type: ignore[misc]
    state = wait_converged(nodes)
    assert state["chat"]["data"] == {"owner": "web"}
    assert sorted(state) == ["beta", "chat"]


def test_concurrent_writes_of_different_users_on_one_flag_all_survive(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    start_nodes: StartNodes,
) -> None:
    nodes = start_nodes(with_namespace(redis_url, namespace), 3)
    start = threading.Barrier(len(nodes))
    failures: list[BaseException] = []

    def write(node: Node) -> None:
        try:
            start.wait()
            for n in range(30):
                node.call("activate_user", "chat", f"{node.name}-{n}")
                if n % 10 == 0:
                    node.call("set_feature_data", "chat", {node.name: n})
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    state = wait_converged(nodes)
    assert set(state["chat"]["users"]) == {f"n{i}-{n}" for i in range(3) for n in range(30)}
    assert state["chat"]["data"] == {"n0": 20, "n1": 20, "n2": 20}


def test_redis_restarted_empty_under_running_processes(
    private_redis: RedisServer,  # noqa: F811
    start_nodes: StartNodes,
) -> None:
    url = with_namespace(private_redis.url, "app")
    nodes = start_nodes(url, 3)
    nodes[0].call("activate_user", "chat", 1)
    nodes[1].call("activate_percentage", "beta", 30)
    nodes[2].call("set_feature_data", "beta", {"owner": "web"})
    before = wait_converged(nodes)
    exports = {node.name: node.call("export") for node in nodes}

    private_redis.stop()
    for node in nodes:
        eventually(lambda n=node: not _connected(n), what=f"{node.name} sees Redis gone")  # type: ignore[misc]
        # Checks keep answering from the replica.
        assert node.call("active", "chat", 1) is True
        assert node.call("active", "chat", 2) is False
        assert node.call("get", "beta")["percentage"] == 30
        # Writes raise a clear error and change nothing.
        with pytest.raises(NodeError) as raised:
            node.call("activate_user", "chat", f"lost-{node.name}")
        assert raised.value.kind == "StoreUnavailableError"
        assert "cannot write to Redis (app)" in raised.value.message
        assert node.call("export") == exports[node.name]
        sync = node.call("stats")["sync"]
        assert sync["last_error"]
        assert sync["errors"] >= 1

    private_redis.start()  # persistence is off: it comes back empty
    for node in nodes:
        eventually(lambda n=node: _connected(n), what=f"{node.name} reconnects")  # type: ignore[misc]
        assert node.call("stats")["sync"]["reconnects"] >= 1
    # Re-seeded by the processes: everything is in Redis again.
    connection = redis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        assert set(connection.smembers("app:flags")) == {"chat", "beta"}
        assert "user:1" in connection.hkeys("app:flag:chat")
        assert "data:owner" in connection.hkeys("app:flag:beta")
    finally:
        connection.close()
    assert wait_converged(nodes) == before

    nodes[2].call("activate_user", "chat", 3)
    for node in nodes:
        eventually(lambda n=node: n.call("active", "chat", 3), what=f"new write on {node.name}")  # type: ignore[misc]
    late = start_nodes(url, 1)[0]  # a process started after the restart gets everything
    state = wait_converged([*nodes, late])
    assert set(state["chat"]["users"]) == {"1", "3"}
    assert state["beta"]["data"] == {"owner": "web"}


def _subscriber_id(connection: redis.Redis, name: str) -> str:
    subscribers = [
        client
        for client in connection.client_list()
        if client["name"] == name and int(client.get("sub", 0)) > 0
    ]
    assert len(subscribers) == 1, subscribers
    return str(subscribers[0]["id"])


def test_a_subscriber_killed_while_another_process_writes_converges_without_restart(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    start_nodes: StartNodes,
) -> None:
    writer, victim, bystander = start_nodes(with_namespace(redis_url, namespace), 3)
    writer.call("activate", "before")
    wait_converged([writer, victim, bystander])
    node_id = victim.node_id
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        # Paused, so the victim cannot reconnect before the writes below are published: it
        # misses them for sure, as a subscriber away at the wrong moment does.
        victim.pause()
        try:
            killed = _subscriber_id(connection, victim.name)
            assert connection.client_kill_filter(_id=killed) == 1
            writer.call("activate_user", "during", 7)
            writer.call("deactivate", "before")
            writer.call("set_feature_data", "during", {"owner": "web"})
            eventually(lambda: bystander.call("active", "during", 7))
        finally:
            victim.resume()
        eventually(lambda: victim.call("active", "during", 7), what="the missed writes arrive")
        state = wait_converged([writer, victim, bystander])
        assert state["during"]["data"] == {"owner": "web"}
        assert victim.call("active", "before") is False
        # The same process, reconnected by itself on a new subscriber connection.
        assert victim.call("stats")["node"] == node_id
        assert victim.call("stats")["sync"]["reconnects"] >= 1
        assert _subscriber_id(connection, victim.name) != killed
        writer.call("activate", "after")
        eventually(lambda: victim.call("active", "after"), what="live updates again")
    finally:
        connection.close()
