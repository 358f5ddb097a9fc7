"""A test-cluster node whose SQLite commits of chosen flags never finish: ``python gated_node.py
--gate DIR NODE-OPTIONS...``, run by :class:`GatedNode`.

Everything else is the ordinary node process (``rollout.testing._node_process``) on a real
SQLite file. A save that touches a flag whose name starts with ``gated-`` first writes the
flag names to ``DIR/entered``, then blocks for ever, before anything of it is committed: the
test sees the node inside the window between "about to commit" and "committed" for as long as it
likes, asks the node what it shows meanwhile (its command thread is not the one blocked), and
ends the window the way a crash does, with SIGKILL. No sleep decides anything.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from rollout.stores import Delta, SQLiteStore
from rollout.testing import _node_process
from rollout.testing.cluster import Node

__all__ = ["GATED_PREFIX", "GatedNode"]

#: Flags whose commits never finish on a gated node.
GATED_PREFIX = "gated-"


class GatedNode(Node):
    """A :class:`~rollout.testing.cluster.Node` whose commits of ``gated-*`` flags block for ever
    after announcing themselves in ``gate / "entered"``."""

    def __init__(self, name: str, directory: Path, *, gate: Path, **options: Any) -> None:
        super().__init__(name, directory, **options)
        gate.mkdir(parents=True, exist_ok=True)
        self.entered = gate / "entered"
        self.program = (__file__, "--gate", str(gate))


class _GatedSQLiteStore(SQLiteStore):
    def __init__(self, url: str, gate: Path) -> None:
        super().__init__(url.removeprefix("sqlite:///"))  # the URL Node made: an absolute path
        self._gate = gate

    def save(self, delta: Delta) -> None:
        gated = sorted(name for name in delta if name.startswith(GATED_PREFIX))
        if gated:
            # Written aside and renamed into place: the test waits for the name to exist, and
            # must never find it created but not yet written.
            announcing = self._gate / "entered.partial"
            announcing.write_text(",".join(gated))
            announcing.replace(self._gate / "entered")
            threading.Event().wait()  # never set: the test ends this process with SIGKILL
        super().save(delta)


def main(argv: list[str]) -> int:
    if argv[:1] != ["--gate"] or "--store" not in argv:
        raise SystemExit("usage: gated_node.py --gate DIR --store URL NODE-OPTIONS...")
    gate, rest = Path(argv[1]), argv[2:]
    url = rest[rest.index("--store") + 1]
    return _node_process.main(rest, store=_GatedSQLiteStore(url, gate))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
