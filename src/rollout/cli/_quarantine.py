"""``rollout quarantine``: list, accept or drop registers stamped too far in the future.

The command opens the store like every other one, so it sees what the store holds beyond
``max_offset`` (a node that ran ahead wrote it); with ``--peers`` it joins the cluster first.
Accepting writes the values again, stamped now; dropping forgets them. Both go into the flag's
history with ``--as`` and ``--reason`` (docs/operations.md, "Quarantine").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from .._client.rollout import Rollout
from . import _admin as admin
from . import _cluster as cluster
from . import _table as table

__all__ = ["add_quarantine"]

Handler = Callable[[Rollout, argparse.Namespace], int]
AddCommand = Callable[[str, str, Handler], argparse.ArgumentParser]


def add_quarantine(add: AddCommand) -> None:
    command = add(
        "quarantine",
        "list registers refused as stamped too far in the future; accept or drop them",
        cmd_quarantine,
    )
    command.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=("list", "accept", "drop"),
        help="list (default); accept: write the values again, stamped now; drop: forget them",
    )
    command.add_argument("name", metavar="FLAG", nargs="?", help="flag name (list: filter)")
    command.add_argument(
        "key", metavar="KEY", nargs="?", help="only this register, e.g. user:42 (default: all)"
    )
    admin.add_actor_options(command)


def cmd_quarantine(flags: Rollout, args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.key is not None:
            raise ValueError(f"list takes a FLAG only, got a KEY too: {args.key!r}")
        return _list(flags, args)
    if args.name is None:
        raise ValueError(f"`rollout quarantine {args.action}` needs a FLAG (and maybe a KEY)")
    if args.action == "accept":
        count = flags.accept_quarantined(args.name, args.key)
        done = "accepted (written again, stamped now)"
    else:
        count = flags.drop_quarantined(args.name, args.key)
        done = "dropped"
    cluster.leave(flags, args)
    if args.json:
        print(json.dumps({"flag": args.name, "action": args.action, "registers": count}))
    else:
        print(f"{args.name}: {count} quarantined register{'s' * (count != 1)} {done}")
    return 0


def _list(flags: Rollout, args: argparse.Namespace) -> int:
    held = flags.quarantined(args.name)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in held], indent=2, default=str))
        return 0
    if not held:
        print("nothing is quarantined")
        return 0
    rows = [
        [
            entry.flag,
            entry.key,
            json.dumps(entry.value),
            entry.node,
            entry.origin,
            f"{entry.ahead_ms / 1000:+.0f} s",
        ]
        for entry in held
    ]
    print(table.format_table(["FLAG", "KEY", "VALUE", "STAMPED BY", "FROM", "AHEAD"], rows))
    return 0
