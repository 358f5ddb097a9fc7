"""``rollout quarantine``: list, accept or drop registers stamped too far in the future.

The command opens the store like every other one, so it sees what the store holds beyond
``max_offset`` (a node that ran ahead wrote it); with ``--peers`` it joins the cluster first, as a
node of its own. What a running node refused from its peers is held in that node's memory only:
``--url`` asks the node through its admin API (``GET /api/v1/quarantine``, ``POST
.../accept|drop``), with the same output. Accepting writes the values again, stamped now;
dropping forgets them. Both go into the flag's history with ``--reason``, and as made by ``--as``
locally or by the API token's name through ``--url`` (docs/operations.md, "Quarantine").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from .._client.rollout import Rollout
from . import _admin as admin
from . import _api_client as api
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
    api.add_url_options(command, remote_quarantine)


#: Where else held registers may be, said when the store holds none: the store keeps the
#: quarantine of every process that uses it, except a memory store, which dies with its node.
_ELSEWHERE = (
    "a `rollout serve` node on a memory:// store keeps what it refused in its own memory: "
    "ask it with `rollout quarantine --url http://HOST:PORT` (token: $ROLLOUT_TOKEN)"
)


def _check_arguments(args: argparse.Namespace) -> None:
    if args.action == "list" and args.key is not None:
        raise ValueError(f"list takes a FLAG only, got a KEY too: {args.key!r}")
    if args.action != "list" and args.name is None:
        raise ValueError(f"`rollout quarantine {args.action}` needs a FLAG (and maybe a KEY)")


def cmd_quarantine(flags: Rollout, args: argparse.Namespace) -> int:
    _check_arguments(args)
    if args.action == "list":
        return _list([entry.to_dict() for entry in flags.quarantined(args.name)], args)
    resolve = flags.accept_quarantined if args.action == "accept" else flags.drop_quarantined
    try:
        count = resolve(args.name, args.key)
    except ValueError as exc:  # nothing held here: say where else it may be
        raise ValueError(f"{exc}; {_ELSEWHERE}") from None
    cluster.leave(flags, args)
    return _resolved(args, count)


def remote_quarantine(args: argparse.Namespace) -> int:
    """``rollout quarantine --url URL ...``: the same, on a running node through its API."""
    _check_arguments(args)
    if args.action == "list":
        answer = api.call_api(args, "GET", "/quarantine" + api.query(flag=args.name))
        return _list(answer["quarantined"], args, remote=True)
    body = {k: v for k, v in (("key", args.key), ("reason", args.reason)) if v is not None}
    path = f"/quarantine/{api.quote(args.name)}/{args.action}"
    answer = api.call_api(args, "POST", path, body)
    return _resolved(args, int(answer["registers"]))


def _resolved(args: argparse.Namespace, count: int) -> int:
    if args.json:
        print(json.dumps({"flag": args.name, "action": args.action, "registers": count}))
        return 0
    done = "accepted (written again, stamped now)" if args.action == "accept" else "dropped"
    print(f"{args.name}: {count} quarantined register{'s' * (count != 1)} {done}")
    return 0


def _list(held: list[dict[str, Any]], args: argparse.Namespace, *, remote: bool = False) -> int:
    if args.json:
        print(json.dumps(held, indent=2, default=str))
        return 0
    if not held:
        print("nothing is quarantined" + ("" if remote else f" here; {_ELSEWHERE}"))
        return 0
    rows = [
        [
            entry["flag"],
            entry["key"],
            json.dumps(entry["value"]),
            entry["node"],
            entry["origin"],
            f"{entry['ahead_ms'] / 1000:+.0f} s",
        ]
        for entry in held
    ]
    print(table.format_table(["FLAG", "KEY", "VALUE", "STAMPED BY", "FROM", "AHEAD"], rows))
    return 0
