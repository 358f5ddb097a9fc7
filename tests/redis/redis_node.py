"""A process with a ``Rollout`` on a Redis store, driven by JSON lines on stdin/stdout.

``python redis_node.py URL`` opens ``Rollout(URL)`` (which starts the Redis transport by
itself), prints ``{"ready": {"node": ...}}`` and then answers one JSON object per command line
``{"op": ..., "args": [...], "kwargs": {...}}`` with ``{"ok": result}`` or
``{"error": class name, "message": ...}``. Commands are the ``Rollout`` methods plus ``get``
(a flag's ``to_dict()``), ``state`` (every flag's), ``export`` (text) and ``exit``.

The process exits when its stdin closes, so a test that dies never leaves it behind.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from rollout import Rollout


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def _run(flags: Rollout, op: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if op == "get":
        return flags.get(*args).to_dict()
    if op == "state":
        return {name: flags.get(name).to_dict() for name in flags.features()}
    if op == "export":
        return flags.export().decode()
    if op == "exit":
        flags.close()
        return None
    method = getattr(flags, op, None) if not op.startswith("_") else None
    if not callable(method):
        raise ValueError(f"unknown op {op!r}")
    result = method(*args, **kwargs)
    return sorted(result) if isinstance(result, set) else result


def main(url: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    flags = Rollout(url)
    try:
        _answer({"ready": {"node": flags.stats()["node"]}})
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            try:
                result = _run(flags, op, command["args"], command["kwargs"])
            except Exception as exc:  # reported to the test, which decides
                _answer({"error": type(exc).__name__, "message": str(exc)})
                continue
            _answer({"ok": result})
            if op == "exit":
                break
    finally:
        flags.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
