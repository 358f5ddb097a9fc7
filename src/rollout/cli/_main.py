"""The ``rollout`` command: read and change flags in a store from a shell.

Every command opens the store, does one thing through the public :class:`Rollout` API, and
closes it. Errors the library raises on purpose (bad names, percentages out of range, corrupt
files, unreadable stores) are shown as one line on stderr with exit status 2, never a traceback.
A write the store did not answer in time may or may not have happened: exit status 3, and the
line says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from .._client.rollout import Rollout
from .._core.feature import Feature
from .._core.redact import scrub
from .._core.shapes import check_shape, flag_shape, history_usage, summary_shape
from .._core.validate import MAX_DEPTH
from ..errors import PartlyStoredError, RolloutError, StoreOutcomeUnknownError
from ..stores import Store, open_store
from . import _admin as admin
from . import _cluster as cluster
from . import _completion
from . import _options as shared
from . import _progress as progress
from . import _table as table
from . import _targeting as targeting
from ._options import DEFAULT_STORE, STORE_ENV

__all__ = ["DEFAULT_STORE", "STORE_ENV", "build_parser", "main"]


#: Commands that open an existing store, never create one (a typo in --store, or a command run
#: in the wrong folder, is an error rather than an empty store saying "off"): those that only
#: read it, and those that act on what it holds already (its quarantine; export-ruby copies it;
#: a removal, which refuses a flag that does not exist).
EXISTING_STORE_COMMANDS = (
    frozenset({"list", "show", "check", "export", "history", "members"})
    | (targeting.READ_COMMANDS | targeting.REMOVAL_COMMANDS | {"quarantine", "export-ruby"})
    | {"deactivate", "delete", "deactivate-user", "include-user", "deactivate-group", "clear-data"}
)

Handler = Callable[[Rollout, argparse.Namespace], int]
Apply = Callable[[Rollout, argparse.Namespace], None]


# Helpers --------------------------------------------------------------------------------------


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _number(text: str) -> float:
    # int first, so an error message repeats "150" as typed rather than "150.0".
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        # The library's words for the same value ("percentage must be ..."), as the API says.
        raise ValueError(f"percentage must be a number from 0 to 100, got {text!r}") from None


def _limit(text: str) -> int:
    # An argparse type: its ValueError becomes a usage error naming --limit and the value.
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_limit.__name__ = "count"  # argparse says "invalid count value: '-1'"


def _json_or_text(text: str, key: str) -> Any:
    """``5`` -> 5, ``true`` -> True, ``web`` -> "web"; NaN and Infinity stay text (not JSON)."""

    def reject(constant: str) -> None:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=reject)
    except RecursionError:  # valid JSON nested deeper than the parser goes: not text either
        raise ValueError(
            f"data[{key!r}] nests more than {MAX_DEPTH} levels deep, got {text[:40]!r}..."
        ) from None
    except ValueError:
        return text


def _data_pairs(pairs: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            raise ValueError(f"data must be given as KEY=VALUE, got {pair!r:.200}")
        data[key] = _json_or_text(value, key)
    return data


# Read commands --------------------------------------------------------------------------------


def _listed(flags: Rollout) -> list[Feature]:
    return [flags.get(name) for name in flags.features()]


def _cmd_list(flags: Rollout, args: argparse.Namespace) -> int:
    features = _listed(flags)
    if args.json:
        # Usage from history only: checks are counted by serve processes, not by a command
        # that reads the store (last_checked and checks stay null here).
        _print_json([summary_shape(f, history_usage(f, flags.history)) for f in features])
    else:
        print(table.format_table(table.LIST_HEADER, table.list_rows(features)))
    return 0


def _cmd_show(flags: Rollout, args: argparse.Namespace) -> int:
    feature = flags.get(args.name)
    # get() answers an empty Feature for any name; showing that would hide a typo.
    if not flags.exists(args.name):
        raise ValueError(f"no flag named {args.name!r}")
    if args.json:
        _print_json(flag_shape(feature, history_usage(feature, flags.history)))
    else:
        rows = table.feature_rows(feature, args.limit)
        print(table.format_table(["FIELD", "VALUE"], rows))
    return 0


def _cmd_check(flags: Rollout, args: argparse.Namespace) -> int:
    if args.why:
        why = flags.explain(args.name, args.user)
        if args.json:
            _print_json(why.to_dict())
        else:
            print(why.message)  # "on: ..." or "off: ...", the rule and its numbers
        return 0 if why.active else 1
    on = flags.active(args.name, args.user)
    if args.json:
        _print_json(check_shape(args.name, args.user, on, flags.get(args.name)))
    else:
        print("on" if on else "off")
    return 0 if on else 1


def _cmd_export(flags: Rollout, args: argparse.Namespace) -> int:
    data = flags.export()
    if args.file in (None, "-"):
        sys.stdout.flush()  # the bytes go below the text layer; keep the order
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(args.file).write_bytes(data)
        print(f"exported {len(flags.features())} flags to {args.file}")
    return 0


def _cmd_import(flags: Rollout, args: argparse.Namespace) -> int:
    changed = sorted(progress.merge_input(flags, args.file))  # big inputs: lines on stderr
    if args.json:
        _print_json({"changed": changed})
    elif not changed:
        print("no flags changed")
    else:
        # A flag the import deleted has no row in list_rows(); say so instead.
        deleted = [[name, "deleted", "", "", "", ""] for name in changed if not flags.exists(name)]
        rows = table.list_rows(flags.get(name) for name in changed if flags.exists(name))
        print(table.format_table(table.LIST_HEADER, sorted(rows + deleted)))
    return 0


# Write commands -------------------------------------------------------------------------------


def _cmd_write(flags: Rollout, args: argparse.Namespace) -> int:
    args.apply(flags, args)
    cluster.leave(flags, args)
    feature = flags.get(args.name)
    if args.json and args.command == "delete":
        _print_json({"deleted": feature.name})  # the API's answer: there is no flag to show
    elif args.json:
        _print_json(flag_shape(feature, history_usage(feature, flags.history)))
    elif args.command == "delete":
        print(f"{feature.name}: deleted")
    elif args.command == "clear-data":
        print(f"{feature.name}: data cleared")
    elif args.command == "data":
        print(f"{feature.name}: data {json.dumps(dict(feature.data), sort_keys=True)}")
    else:
        print(table.describe(feature))
    return 0


_IDS = ("ids", {"nargs": "+", "metavar": "ID", "help": "user ids (compared as strings)"})
_GROUP = ("group", {"metavar": "GROUP", "help": "group name (`all` is every user)"})
_PERCENTAGE = ("percentage", {"metavar": "PERCENTAGE", "help": "a number from 0 to 100"})
_PAIRS = ("pairs", {"nargs": "+", "metavar": "KEY=VALUE", "help": "VALUE is JSON if it parses"})

# command -> (one-line help, extra positional arguments, the write it makes)
_WRITES: dict[str, tuple[str, tuple[tuple[str, dict[str, Any]], ...], Apply]] = {
    "activate": ("turn a flag on for everybody", (), lambda f, a: f.activate(a.name)),
    "deactivate": (
        "turn a flag off for everybody (users, groups, percentages cleared; data kept)",
        (),
        lambda f, a: f.deactivate(a.name),
    ),
    "activate-user": (
        "turn a flag on for these user ids",
        (_IDS,),
        lambda f, a: f.activate_users(a.name, a.ids),
    ),
    "deactivate-user": (
        "remove these user ids from a flag's users",
        (_IDS,),
        lambda f, a: f.deactivate_users(a.name, a.ids),
    ),
    "exclude-user": (
        "never turn a flag on for these user ids",
        (_IDS,),
        lambda f, a: f.exclude_users(a.name, a.ids),
    ),
    "include-user": (
        "undo exclude-user for these user ids",
        (_IDS,),
        lambda f, a: f.include_users(a.name, a.ids),
    ),
    "activate-group": (
        "turn a flag on for a group",
        (_GROUP,),
        lambda f, a: f.activate_group(a.name, a.group),
    ),
    "deactivate-group": (
        "remove a group from a flag",
        (_GROUP,),
        lambda f, a: f.deactivate_group(a.name, a.group),
    ),
    "percentage": (
        "turn a flag on for PERCENTAGE percent of users (the same users every time)",
        (_PERCENTAGE,),
        lambda f, a: f.activate_percentage(a.name, _number(a.percentage)),
    ),
    "percentage-of-time": (
        "turn a flag on for PERCENTAGE percent of checks (random on every check)",
        (_PERCENTAGE,),
        lambda f, a: f.activate_percentage_of_time(a.name, _number(a.percentage)),
    ),
    "data": (
        "set data keys on a flag (other keys stay)",
        (_PAIRS,),
        lambda f, a: f.set_feature_data(a.name, _data_pairs(a.pairs)),
    ),
    "clear-data": ("remove all data from a flag", (), lambda f, a: f.clear_feature_data(a.name)),
    "delete": ("forget a flag: targeting and data", (), lambda f, a: f.delete(a.name)),
}


# Parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout",
        description="Read and change feature flags in a rollout store.",
        epilog="The options above may also follow the command: `rollout COMMAND --help` lists "
        "the ones it takes, with an example.",
    )
    parser.add_argument("--version", action="version", version=f"rollout {__version__}")
    shared.add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler, existing_store=name in EXISTING_STORE_COMMANDS)
        return sub

    add("list", "list every flag as a table", _cmd_list)
    show = add("show", "show every field of one flag", _cmd_show)
    show.add_argument("name", metavar="NAME")
    show.add_argument(
        "--limit",
        metavar="N",
        type=_limit,
        help="show the first N users and excluded users (numeric ids by value), then a count "
        "of the rest (default: all; the table only, --json is whole)",
    )
    check = add("check", "print on/off; exit status 0 when on, 1 when off", _cmd_check)
    check.add_argument("name", metavar="NAME")
    check.add_argument("--user", metavar="ID", help="check for this user id")
    check.add_argument(
        "--why", action="store_true", help="say which rule decided, with its numbers (one line)"
    )
    for name, (help_text, arguments, apply) in _WRITES.items():
        sub = add(name, help_text, _cmd_write)
        sub.add_argument("name", metavar="NAME", help="flag name")
        for dest, options in arguments:
            sub.add_argument(dest, **options)
        admin.add_actor_options(sub)
        sub.set_defaults(apply=apply)
    export = add("export", "write every flag (with timestamps) to FILE or stdout", _cmd_export)
    export.add_argument("file", metavar="FILE", nargs="?", help="default: stdout")
    merge = add(
        "import", "merge an export from FILE or stdin; print the flags changed", _cmd_import
    )
    merge.add_argument("file", metavar="FILE", nargs="?", help="default: stdin")
    targeting.add_commands(add)
    cluster.add_members(add)
    serve = add(
        "serve",
        "run the HTTP API and dashboard (and with --listen/--peers a cluster node) until Ctrl-C",
        admin.cmd_serve,
    )
    admin.add_serve_options(serve)
    serve.set_defaults(prepare=_prepare_serve)
    admin.add_history(add)
    from . import _check_on, _quarantine, _ruby

    _quarantine.add_quarantine(add)

    def add_ruby(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        sub = add(name, help_text, handler)
        if name == "import-ruby":  # it writes flags: history records who
            admin.add_actor_options(sub)
        return sub

    _ruby.add_commands(add_ruby)
    _check_on.add_check_on(commands)
    cluster.add_secret_command(commands)
    admin.add_token_command(commands)
    _completion.add_commands(commands, parser)
    shared.finish_commands(commands)  # the shared options each command uses, its example
    return parser


# Entry point ----------------------------------------------------------------------------------


def _prepare_serve(args: argparse.Namespace) -> None:
    admin.prepare_serve(args)
    cluster.refuse_an_open_listen(args)


@contextlib.contextmanager
def _closing(store: Store) -> Iterator[None]:
    # The CLI opens the store itself (to say whether it may be created), so it closes it too.
    try:
        yield
    finally:
        store.close()


def _warn_if_nothing_kept(url: str, args: argparse.Namespace) -> None:
    if url.startswith("memory:") and not args.peers and not getattr(args, "listen", None):
        print(
            "rollout: warning: memory:// keeps nothing: the flags live in this process and are "
            "gone when it exits (use sqlite:///rollout.db, or --peers to reach a cluster)",
            file=sys.stderr,
        )


#: The exit status of a write the store did not answer in time (it may have been stored), or
#: stored in part (PartlyStoredError).
OUTCOME_UNKNOWN = 3


def _error(message: object) -> int:
    text = " ".join(str(message).splitlines())
    print(f"rollout: error: {text}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status (0 ok, 1 `check` says off, 2 error, 3 a write
    that may or may not have happened)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_completion.HIDDEN]:  # the completion scripts' call, never listed
        return _completion.complete(argv[1:])
    parser = build_parser()
    if not argv:
        # `rollout` alone: the command list, where argparse would give one usage line. Still a
        # usage error (stderr, exit status 2), as argparse has it for a missing command.
        parser.print_help(sys.stderr)
        return 2
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # A command's own usage error when it has one (check-on's is UNKNOWN, 3).
            error: Callable[[str], NoReturn] = getattr(args, "usage_error", parser.error)
            error(f"unrecognized arguments: {' '.join(unknown)}")
        shared.refuse_ignored(parser, args)
    except SystemExit as exc:  # --help and usage errors: keep argparse's status
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    standalone: Callable[[argparse.Namespace], int] | None = getattr(args, "standalone", None)
    if standalone is not None:  # check-on: an HTTP client, no store
        return standalone(args)
    url = args.store or os.environ.get(STORE_ENV) or DEFAULT_STORE
    # URLs that may carry a password (docs/security.md, "Secrets in URLs"): no message shows it.
    urls = [url, getattr(args, "url", None), getattr(args, "redis", None)]
    cluster.configure_logging(args.command, urls)
    serving = args.command == "serve"
    try:
        prepare: Callable[[argparse.Namespace], None] | None = getattr(args, "prepare", None)
        if prepare is not None:
            prepare(args)  # before the store is opened: refused options change nothing
        # A one-off command must not act on an empty replica: an unreachable store is an error.
        # A server starts anyway and loads the store's flags when it can (Redis, peers).
        options = cluster.cluster_options(args)
        _warn_if_nothing_kept(url, args)
        store = open_store(url, create=not args.existing_store)
        try:
            flags = Rollout(store, start_offline=serving, **options)
        except BaseException:
            store.close()
            raise
        with _closing(store), flags:
            if not serving:
                # A server waits for nobody: the first node of a cluster starts alone.
                cluster.join(flags, args)
            handler: Handler = args.handler
            with admin.actor_context(flags, args):
                return handler(flags, args)
    except BrokenPipeError:
        # `rollout list | head`: the reader left; silence the flush at interpreter exit too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (StoreOutcomeUnknownError, PartlyStoredError) as exc:
        _error(scrub(exc, *urls))  # it says that the write may have happened, or what of it did
        return OUTCOME_UNKNOWN
    except (TypeError, ValueError, RolloutError, OSError) as exc:
        return _error(scrub(exc, *urls))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
