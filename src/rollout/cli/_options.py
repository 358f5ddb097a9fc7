"""Which of the shared options (``--store``, ``--json``, ``--peers`` ...) each command takes.

``rollout --store URL list`` (before the command) keeps working for every command that opens a
store; after the command, a command lists and accepts only the options it uses: ``export``
writes its own format, so it has no ``--json``; only ``serve`` listens, so only it has
``--insecure``; only a command that waits for peers has ``--timeout``. An option given before a
command that does not take it is a usage error, not silently ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import _cluster as cluster
from . import _help as help_

__all__ = ["GLOBAL_OPTIONS", "add_global_options", "finish_commands", "refuse_ignored"]

STORE_ENV = "ROLLOUT_STORE"
DEFAULT_STORE = "sqlite:///rollout.db"

#: The options of the top-level parser, by dest, that commands may repeat after their name.
GLOBAL_OPTIONS = ("store", "json", "peers", "secret", "insecure")

#: Commands that open a store but print no JSON (export writes the export format itself) ...
_NO_JSON = frozenset({"export", "export-flagd", "serve"})
#: ... and the only one that listens for peers (--insecure is about listening).
_LISTENING = frozenset({"serve"})


def add_global_options(
    parser: argparse.ArgumentParser, names: tuple[str, ...] = GLOBAL_OPTIONS, *, suppress: bool
) -> None:
    """``names`` of the shared options on ``parser``.

    Commands repeat them with SUPPRESS as default, so ``rollout --json list`` is not overwritten
    by the command's own default while ``rollout list --json`` still works.
    """
    if "store" in names:
        parser.add_argument(
            "--store",
            metavar="URL",
            default=argparse.SUPPRESS if suppress else None,
            help=f"store URL (default: ${STORE_ENV}, else {DEFAULT_STORE}); "
            "sqlite:///relative.db, sqlite:////abs/path.db, memory://, redis://host/0 or "
            "postgresql://user@host/db?schema=rollout",
        )
    if "json" in names:
        parser.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS if suppress else False,
            help="machine-readable JSON output",
        )
    cluster.add_cluster_options(parser, suppress=suppress, insecure="insecure" in names)


def _takes(command: argparse.ArgumentParser) -> frozenset[str]:
    return frozenset(a.dest for a in command._actions if a.option_strings)


def finish_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Once every command is built: the shared options each store command uses, ``--timeout``
    where it waits for peers, and the example under each command's help."""
    for name, command in commands.choices.items():
        opens_store = command.get_default("handler") is not None
        if opens_store:
            names = [n for n in GLOBAL_OPTIONS if n != "insecure" or name in _LISTENING]
            if name in _NO_JSON:
                names.remove("json")
            add_global_options(command, tuple(names), suppress=True)
            if name not in _LISTENING and "timeout" not in _takes(command):
                cluster.add_timeout_option(command)
        command.set_defaults(takes=_takes(command))
        help_.add_example(command, name)


def refuse_ignored(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A shared option given before a command that does not use it: a usage error."""
    takes: frozenset[str] = getattr(args, "takes", frozenset())
    for dest in GLOBAL_OPTIONS:
        given: Any = getattr(args, dest, None)
        if given and dest not in takes:
            parser.error(f"rollout {args.command} does not take --{dest}")
