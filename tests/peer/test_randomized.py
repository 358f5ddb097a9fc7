"""Random writes on random nodes under random pauses, kills and partitions, then heal.

Every node must end identical, and equal to the state obtained by merging every acknowledged
write into one replica. A write is acknowledged when ``node.call(...)`` returned; right after it
the test takes that node's ``export()``, which holds the write and everything the node knew. A
node killed later must lose none of it (the write was committed to its SQLite file first).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout
from rollout.testing import FakeClock
from rollout.testing.cluster import Node, NodeError, free_port, wait_converged
from rollout.testing.proxy import LinkTable

FLAGS = ("chat", "beta", "search")
NODES = 4
STEPS = 60
#: Far in the future, so the reference replica never rejects a register as too new.
REFERENCE_CLOCK_MS = 4_000_000_000_000
CONVERGE_TIMEOUT = 30.0


def _random_write(rng: random.Random) -> tuple[str, list[Any]]:
    flag = rng.choice(FLAGS)
    user = rng.randrange(8)
    op = rng.choice(
        [
            "activate_user",
            "activate_user",
            "deactivate_user",
            "activate_percentage",
            "exclude_user",
            "set_feature_data",
            "deactivate",
            "activate",
        ]
    )
    if op in ("activate_user", "deactivate_user", "exclude_user"):
        return op, [flag, user]
    if op == "activate_percentage":
        return op, [flag, rng.choice([0, 5, 25, 50, 100])]
    if op == "set_feature_data":
        return op, [flag, {rng.choice(["owner", "note"]): rng.randrange(100)}]
    return op, [flag]


def _reference_state(exports: list[str]) -> dict[str, Any]:
    """Merge every acknowledged export into one in-process replica; its visible state."""
    with Rollout(clock=FakeClock(REFERENCE_CLOCK_MS)) as reference:
        for text in exports:
            reference.merge(text.encode())
        state = {name: reference.get(name).to_dict() for name in reference.features()}
    # As a node would answer it: through JSON.
    loaded: dict[str, Any] = json.loads(json.dumps(state, default=str))
    return loaded


class Chaos:
    """The nodes, their links, and which faults are in force."""

    def __init__(self, nodes: dict[str, Node], links: LinkTable, rng: random.Random) -> None:
        self.nodes = nodes
        self.links = links
        self.rng = rng
        self.paused: set[str] = set()
        self.killed: set[str] = set()
        self.partitioned = False
        self.log: list[str] = []

    def live(self) -> list[str]:
        return [n for n in self.nodes if n not in self.paused and n not in self.killed]

    def fault(self) -> None:
        rng, live = self.rng, self.live()
        choices = ["heal"] if self.partitioned else ["partition"]
        if len(live) > 1:
            choices += ["pause", "kill"]
        if self.paused:
            choices.append("resume")
        if self.killed:
            choices.append("restart")
        action = rng.choice(choices)
        if action == "pause":
            name = rng.choice(live)
            self.nodes[name].pause()
            self.paused.add(name)
        elif action == "resume":
            name = rng.choice(sorted(self.paused))
            self.nodes[name].resume()
            self.paused.discard(name)
        elif action == "kill":
            name = rng.choice(live + sorted(self.paused))
            self.nodes[name].kill()
            self.paused.discard(name)
            self.killed.add(name)
        elif action == "restart":
            name = rng.choice(sorted(self.killed))
            self.nodes[name].start()
            self.killed.discard(name)
        elif action == "partition":
            names = list(self.nodes)
            rng.shuffle(names)
            cut = rng.randrange(1, len(names))
            name = f"{sorted(names[:cut])}|{sorted(names[cut:])}"
            self.links.partition(names[:cut], names[cut:])
            self.partitioned = True
        else:
            name = "all"
            self.links.heal_all()
            self.partitioned = False
        self.log.append(f"{action} {name}")

    def heal(self) -> None:
        self.links.heal_all()
        for name in sorted(self.paused):
            self.nodes[name].resume()
        for name in sorted(self.killed):
            self.nodes[name].start()
        self.paused.clear()
        self.killed.clear()
        self.partitioned = False


def _refused_for_clock(writer: Node, op: str, args: list[Any]) -> str:
    """Run the write; "" if acknowledged, the reason if refused for an unconfirmed clock, or
    as a removal from a flag the writer does not have (yet): either way nothing was written."""
    try:
        writer.call(op, *args)
    except NodeError as error:
        refused = error
    else:
        return ""
    if "not confirmed" not in refused.message and refused.kind != "UnknownFlagError":
        raise refused
    return refused.message


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_faults_lose_no_acknowledged_write(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(NODES)]
    ports = {name: free_port() for name in names}
    with (
        LinkTable({name: f"127.0.0.1:{ports[name]}" for name in names}) as links,
        contextlib.ExitStack() as stack,
    ):
        nodes = {
            name: Node(
                name,
                tmp_path,
                port=ports[name],
                peers=list(links.peers(name).values()),
                learn_members=False,
                anti_entropy_interval=0.2,
            )
            for name in names
        }
        for node in nodes.values():
            stack.callback(node.stop)
            node.start()
        for node in nodes.values():
            node.wait_clock_judged()
        chaos = Chaos(nodes, links, rng)
        acknowledged: list[str] = []
        for _ in range(STEPS):
            if rng.random() < 0.6:
                writer = nodes[rng.choice(chaos.live())]
                op, args = _random_write(rng)
                refused = _refused_for_clock(writer, op, args)
                if refused:
                    # A node restarted while cut off from every peer has no confirmed clock
                    # yet: it refuses the write, which is then not acknowledged either.
                    chaos.log.append(f"{writer.name}.{op}{tuple(args)} refused: {refused}")
                else:
                    acknowledged.append(writer.call("export"))
                    chaos.log.append(f"{writer.name}.{op}{tuple(args)}")
            else:
                chaos.fault()
            time.sleep(rng.uniform(0.0, 0.15))

        chaos.heal()
        everyone = list(nodes.values())
        wait_converged(everyone, CONVERGE_TIMEOUT)  # AssertionError with the exports if not

        assert acknowledged, "the schedule made no write"
        expected = _reference_state(acknowledged)
        assert expected, "the acknowledged writes left no flag"
        for node in everyone:
            assert node.call("state") == expected, (
                f"{node.name} differs from the merge of every acknowledged write; "
                f"schedule: {chaos.log}"
            )
