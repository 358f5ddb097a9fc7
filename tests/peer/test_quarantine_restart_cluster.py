"""The quarantine across a restart, with real node processes, real sockets and their SQLite
files: a register a node quarantined is still refused after the node restarts, even once its
clock has caught up with the register's stamp and a peer keeps offering it (no time bomb across
restarts)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from rollout import Rollout
from rollout._core.clock import system_clock_ms
from rollout.testing import FakeClock, eventually
from rollout.testing.cluster import Node

from .rounds import all_rise

HOUR = 3_600_000
SECRET = secrets.token_urlsafe(32)


def _node(name: str, directory: Path, **options: Any) -> Node:
    return Node(name, directory, secret=SECRET, anti_entropy_interval=0.2, **options)


def _quarantined(node: Node) -> set[tuple[str, str, str]]:
    return {(e["flag"], e["key"], e["origin"]) for e in node.call("quarantined")}


def test_a_quarantined_register_stays_refused_after_the_node_restarts(tmp_path: Path) -> None:
    # `lax` trusts timestamps up to 2 h ahead: it takes a +1 h register and offers it forever.
    lax = _node("lax", tmp_path, max_offset=2 * 3600).start()
    strict = _node("strict", tmp_path, peers=[lax.address]).start()
    try:
        strict.wait_clock_judged()
        bomb = Rollout(clock=FakeClock(system_clock_ms() + HOUR))
        bomb.activate_users("bomb", [42, 43])
        lax.call("merge", bomb.export().decode())
        eventually(
            lambda: ("bomb", "user:43", "peer") in _quarantined(strict),
            timeout=30,
            what="strict quarantined the future register",
        )
        # A write made before real time catches up: it supersedes the held user:42 (judged,
        # no longer held); user:43 stays held.
        strict.call("activate", "bomb")
        strict.call("deactivate_user", "bomb", 42)

        # Both restart with their clocks past the register's stamp (as if an hour went by):
        # it is no longer ahead, and would now win over the write above if it were forgotten.
        for node in (strict, lax):
            node.stop()
            node._options["clock_offset_ms"] = HOUR + 60_000
        lax.start()
        strict.start()
        strict.wait_clock_judged()
        assert ("bomb", "user:43", "peer") in _quarantined(strict)
        rejected = [lambda: int(strict.call("stats")["registers_rejected"])]
        eventually(all_rise(rejected, 3), timeout=60, what="offered again, refused again")
        assert strict.call("get", "bomb")["users"] == []
        assert ("bomb", "user:43", "peer") in _quarantined(strict)

        # Dropped deliberately, then restarted again: remembered as judged, still refused.
        assert strict.call("drop_quarantined", "bomb") >= 1
        strict.stop()
        strict.start()
        strict.wait_clock_judged()
        rejected = [lambda: int(strict.call("stats")["registers_rejected"])]
        eventually(all_rise(rejected, 3), timeout=60, what="offered again after the drop")
        assert strict.call("get", "bomb")["users"] == []
        assert strict.call("quarantined") == []
    finally:
        strict.stop()
        lax.stop()
