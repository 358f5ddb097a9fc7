"""The quarantine with real node processes and real sockets: the time bomb, a node restarted on
a store it filled while its clock ran an hour ahead, an NTP step back while running, and
``wait_synced`` when a peer refuses what it covers."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from typing import Any

from rollout import Rollout
from rollout.testing import FakeClock, eventually
from rollout.testing.cluster import Node, wait_converged

from .rounds import all_rise

HOUR = 3_600_000
FAST = 0.2  # anti-entropy interval (s): many rounds in a short test


def _node(name: str, directory: Path, **options: Any) -> Node:
    options.setdefault("secret", SECRET)
    options.setdefault("anti_entropy_interval", FAST)
    return Node(name, directory, **options)


SECRET = secrets.token_urlsafe(32)


def _quarantined(node: Node) -> set[tuple[str, str, str]]:
    return {(e["flag"], e["key"], e["origin"]) for e in node.call("quarantined")}


def _walls(node: Node, flag: str) -> set[int]:
    registers = json.loads(node.call("export"))["flags"].get(flag, {})
    return {register[0] for register in registers.values()}


def _wait_synced_in_thread(node: Node) -> list[Any]:
    """Run wait_synced with a long timeout; a hang fails by the join's time-out below."""
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(node.call("wait_synced", 120, timeout=150)), daemon=True
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "wait_synced did not return although the peer refused"
    return result


def test_a_refused_register_never_goes_off_and_wait_synced_says_false(tmp_path: Path) -> None:
    # `lax` trusts timestamps up to 2 h ahead, so it takes a +1 h register, and its clock (which
    # observed it) stamps its own writes +1 h too. Its peer, with the default 30 s, refuses them.
    lax = _node("lax", tmp_path, max_offset=2 * 3600).start()
    strict = _node("strict", tmp_path, peers=[lax.address]).start()
    try:
        strict.wait_clock_judged()
        strict.call("activate", "warmup")
        eventually(lambda: lax.call("active", "warmup"), timeout=30, what="the pair connected")
        assert lax.call("wait_synced", 30) is True  # nothing refused yet

        future = Rollout(clock=FakeClock(_now_ms() + HOUR))
        future.activate_user("bomb", 42)
        lax.call("merge", future.export().decode())
        lax.call("activate_user", "bomb", 7)  # stamped +1 h by lax's clock
        assert min(_walls(lax, "bomb")) > _now_ms() + HOUR // 2

        assert _wait_synced_in_thread(lax) == [False]
        eventually(
            lambda: ("bomb", "user:7", "peer") in _quarantined(strict),
            timeout=30,
            what="strict quarantined lax's future registers",
        )
        assert strict.call("exists", "bomb") is False

        # strict's clock catches up with the register: anti-entropy offers it round after
        # round, and it is still refused.
        strict.call("set_clock_offset", HOUR + 60_000)
        rejected = [lambda: int(strict.call("stats")["registers_rejected"])]
        eventually(all_rise(rejected, 3), timeout=60, what="offered again, refused again")
        assert strict.call("exists", "bomb") is False
        strict.call("set_clock_offset", 0)
        eventually(
            lambda: strict.call("stats")["sync"]["clock_skew"] is None,
            timeout=30,
            what="strict's clock agrees with lax's again",
        )

        # Resolved deliberately: accept one user (written again, stamped now), drop the rest.
        assert strict.call("accept_quarantined", "bomb", "user:7") == 1
        assert strict.call("get", "bomb")["users"] == ["7"]
        assert strict.call("drop_quarantined", "bomb") >= 1
        assert strict.call("quarantined") == []
        assert max(_walls(strict, "bomb")) < _now_ms() + 60_000
        actions = [event["action"] for event in strict.call("history", "bomb")]
        assert actions[:2] == ["quarantine_drop", "quarantine_accept"]
    finally:
        strict.stop()
        lax.stop()


def test_a_node_restarted_on_a_poisoned_file_writes_now_and_its_old_writes_wait(
    tmp_path: Path,
) -> None:
    poisoned = _node("poisoned", tmp_path, clock_offset_ms=HOUR).start()
    healthy: Node | None = None
    try:
        poisoned.call("activate_user", "old", 1)  # alone: nobody to refuse it yet
        poisoned.stop()

        healthy = _node("healthy", tmp_path).start()
        poisoned.peers = [healthy.address]
        poisoned._options["clock_offset_ms"] = 0  # NTP fixed it before the restart
        poisoned.start()
        poisoned.wait_clock_judged()
        assert _quarantined(poisoned) == {("old", "exists", "store"), ("old", "user:1", "store")}
        assert poisoned.call("exists", "old") is False

        poisoned.call("activate_user", "new", 2)
        assert max(_walls(poisoned, "new")) < _now_ms() + 60_000  # stamped now, not +1 h
        eventually(lambda: healthy.call("active", "new", 2), timeout=30, what="new write arrived")
        assert healthy.call("exists", "old") is False
        assert poisoned.call("wait_synced", 30) is True

        assert poisoned.call("accept_quarantined", "old") == 2
        eventually(lambda: healthy.call("active", "old", 1), timeout=30, what="accepted write")
        wait_converged([poisoned, healthy])
        assert healthy.call("quarantined") == []
    finally:
        poisoned.stop()
        if healthy is not None:
            healthy.stop()


def test_an_ntp_step_back_while_running_quarantines_the_future_writes(tmp_path: Path) -> None:
    node = _node("stepped", tmp_path, clock_offset_ms=HOUR).start()
    peer: Node | None = None
    try:
        node.call("activate", "from-the-future")
        node.call("set_clock_offset", 0)  # NTP steps the wall clock back an hour
        # Found by the anti-entropy round, without waiting for a write.
        eventually(lambda: node.call("stats")["clock_steps_back"] == 1, timeout=30, what="detected")
        assert ("from-the-future", "exists", "own clock") in _quarantined(node)
        assert node.call("exists", "from-the-future") is False

        node.call("activate", "after-the-step")
        assert max(_walls(node, "after-the-step")) < _now_ms() + 60_000
        peer = _node("peer", tmp_path, peers=[node.address]).start()
        eventually(lambda: peer.call("active", "after-the-step"), timeout=30, what="replicated")
        assert node.call("wait_synced", 30) is True
        wait_converged([node, peer])
        assert peer.call("quarantined") == []
        assert "step back" in node.log() or "stepped back" in node.log()
    finally:
        node.stop()
        if peer is not None:
            peer.stop()


def _now_ms() -> int:
    from rollout._core.clock import system_clock_ms

    return system_clock_ms()
