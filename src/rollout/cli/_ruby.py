"""``rollout import-ruby`` and ``rollout export-ruby``: copy flags from or to the Ruby gem's Redis.

For a migration away from (or back to) the Ruby rollout gem 2.x, once. The gem's keys are
``feature:__features__`` and ``feature:<name>`` (see :mod:`rollout.redis.ruby`), behind
``<namespace>:`` when the Ruby side wraps its Redis in redis-namespace (``--ruby-namespace``).

The format keeps order (Ruby arrays, the Integer ``20`` or the Float ``20.0``), our state keeps
timestamps; the two map onto each other as follows, so a record imported and exported again
comes back byte for byte:

* ids, groups and data keys: in the order of their writes, then by name within one write
  (:func:`~rollout.redis.ruby.record_from_state`); an import writes each ascending run of a
  record's ids (or data keys) as one write, so that order is the record's;
* the percentage: the gem writes the Integer when its last call set it (``activate`` 100,
  ``deactivate`` and a new flag 0, ``activate_percentage(:f, 20)``), else the Float it read
  back. An export writes the Integer when the flag's last write set the percentage, reset the
  flag, or created it; an import makes the percentage its last write exactly when the record
  holds an Integer;
* the feature list: existing names keep their place and new ones follow, oldest flag first.

What the format has no place for (excluded users, percentage of time) is left out, with a note.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._client.rollout import Rollout
from .._core.codec import decode
from .._core.keys import EXISTS, PERCENTAGE, RESET
from .._core.redact import redact_url, scrub
from .._core.state import FlagState
from ..redis.ruby import (
    RubyRecord,
    Write,
    check_ruby_safe,
    diff_records,
    feature_key,
    features_after_save,
    features_key,
    features_list,
    parse_features_list,
    parse_record,
    record_from_state,
)
from . import _cluster as cluster
from . import _table as table
from ._progress import Progress

if TYPE_CHECKING:
    import redis

__all__ = ["add_commands", "cmd_export_ruby", "cmd_import_ruby", "import_writes", "ruby_states"]

Handler = Callable[[Rollout, argparse.Namespace], int]
AddCommand = Callable[[str, str, Handler], argparse.ArgumentParser]

#: An import of this many flags or more gets progress lines on stderr.
BIG_IMPORT = 1000
_PERCENTAGE_WRITES = ("activate_percentage", "deactivate_percentage")
_INTEGER = re.compile(r"[0-9]+")  # how Ruby's Integer#to_s writes a percentage from 0 to 100


def add_commands(add: AddCommand) -> None:
    """Register both commands with ``cli.build_parser``'s ``add``."""
    importing = add(
        "import-ruby",
        "copy every flag of the Ruby rollout gem's Redis into the store; print them",
        cmd_import_ruby,
    )
    exporting = add(
        "export-ruby",
        "write every flag of the store to Redis as the Ruby rollout gem's records (one MULTI)",
        cmd_export_ruby,
    )
    for sub in (importing, exporting):
        sub.add_argument("--redis", metavar="URL", required=True, help="the gem's Redis")
        sub.add_argument(
            "--ruby-namespace",
            metavar="NS",
            help="the gem's redis-namespace: its keys are NS:feature:...",
        )


# Redis ------------------------------------------------------------------------------------------


def _connect(url: str) -> redis.Redis:
    try:
        import redis
    except ImportError:
        raise ValueError("--redis needs redis-py: pip install 'rollout[redis]'") from None
    try:
        return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    except ValueError as exc:
        # Named, without its password (redis-py's message may quote a part of the URL).
        raise ValueError(f"--redis {redact_url(url)!r}: {scrub(exc, url)}") from None


@contextmanager
def _talking_to(client: redis.Redis) -> Iterator[None]:
    import redis

    try:
        yield
    except redis.RedisError as exc:
        # Not an OSError: say it in the CLI's one line (exit 2) like any unreachable store.
        raise ConnectionError(f"Ruby rollout Redis: {exc}") from exc
    finally:
        client.close()


# import-ruby ------------------------------------------------------------------------------------


def _ascending_runs(items: Sequence[str]) -> list[list[str]]:
    runs: list[list[str]] = []
    for item in items:
        if runs and runs[-1][-1] < item:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def import_writes(record: RubyRecord) -> list[Write]:
    """``diff_records(None, record)``, split and ordered so an export gives the record back."""
    writes: list[Write] = []
    percentage: list[Write] = []
    for method, args in diff_records(None, record):
        if method in _PERCENTAGE_WRITES:
            percentage.append((method, args))
        elif method == "activate_users":
            writes += [(method, (run,)) for run in _ascending_runs(args[0])]
        elif method == "set_feature_data":
            data: dict[str, Any] = args[0]
            runs = _ascending_runs(list(data))
            writes += [(method, ({key: data[key] for key in run},)) for run in runs]
        else:
            writes.append((method, args))
    if _INTEGER.fullmatch(record.percentage_text):
        return writes + percentage
    # A Float: the gem's last save did not set the percentage, so neither may our last write.
    # Setting no data keys is a write that changes nothing visible.
    return percentage + (writes or [("set_feature_data", ({},))])


def _read_records(client: redis.Redis, namespace: str | None) -> dict[str, tuple[str, RubyRecord]]:
    """Every listed flag's key and parsed record; raises naming the first bad key."""
    list_key = features_key(namespace)
    raw_list = client.get(list_key)
    names = parse_features_list(_text(list_key, raw_list or b""))
    if not names:
        return {}
    keys = [feature_key(name, namespace) for name in names]
    records: dict[str, tuple[str, RubyRecord]] = {}
    for name, key, raw in zip(names, keys, client.mget(keys), strict=True):
        try:
            # A listed flag without a record is the gem's empty flag (Feature.new(name, nil)).
            record = RubyRecord() if raw is None else parse_record(_text(key, raw))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}; nothing was imported") from None
        records[name] = (key, record)
    return records


def _text(key: str, raw: Any, done: str = "imported") -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{key}: not UTF-8 ({exc}); nothing was {done}") from None


def _apply(flags: Rollout, name: str, writes: list[Write]) -> None:
    for method, args in writes:
        getattr(flags, method)(name, *args)


def cmd_import_ruby(flags: Rollout, args: argparse.Namespace) -> int:
    client = _connect(args.redis)
    with _talking_to(client):
        records = _read_records(client, args.ruby_namespace)
    plan = {name: import_writes(record) for name, (_, record) in records.items()}
    # A big import says what it is doing on stderr (one write per flag: thousands take a while).
    progress = Progress("rollout import-ruby") if len(plan) >= BIG_IMPORT else None
    try:
        if progress:
            progress.step(f"read {len(plan)} flags from Redis; checking them")
        # Everything is checked (names, ids, data) on a scratch replica before the first write.
        with Rollout() as scratch:
            for name, writes in plan.items():
                try:
                    _apply(scratch, name, writes)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{records[name][0]}: {exc}; nothing was imported") from None
        for done, (name, writes) in enumerate(plan.items()):
            if progress and done % 100 == 0:
                progress.show(f"writing flag {done + 1} of {len(plan)}")
            _apply(flags, name, writes)
        if progress:
            progress.step(f"wrote {len(plan)} flags")
    finally:
        if progress:
            progress.end()
    cluster.leave(flags, args)
    imported = [flags.get(name) for name in plan]
    if args.json:
        print(json.dumps([feature.to_dict() for feature in imported], indent=2))
    elif not imported:
        print(f"no flags listed under {features_key(args.ruby_namespace)}")
    else:
        rows = [
            [f.name, f"{f.percentage:g}%", str(len(f.users)), ", ".join(sorted(f.groups))]
            for f in imported
        ]
        print(table.format_table(["NAME", "PERCENTAGE", "USERS", "GROUPS"], rows))
    return 0


# export-ruby ------------------------------------------------------------------------------------


def ruby_states(flags: Rollout) -> dict[str, FlagState]:
    """Each existing flag's registers (their timestamps order the record), oldest flag first.

    Read through the public ``export()``, not the replica's private state.
    """
    states: dict[str, FlagState] = {}
    for name, registers in decode(flags.export()).items():
        state = states[name] = FlagState()
        state.merge(registers)
    alive = {name: state for name, state in states.items() if state.exists}
    return dict(sorted(alive.items(), key=lambda item: (_created(item[1]), item[0])))


def _created(state: FlagState) -> Any:
    return min(register.ts for register in state.register_values())


def _set_percentage(state: FlagState) -> int | float | None:
    """The percentage the gem would hold as given (not read back): see the module docstring."""
    latest = state.registers[EXISTS].ts
    register = state.registers.get(PERCENTAGE)
    if register is not None:
        if register.ts != latest:
            return None
        value = float(register.value)
        return int(value) if value.is_integer() else value
    reset = state.registers.get(RESET)
    if reset is not None and reset.ts == latest:
        return 0
    return 0 if all(r.ts == latest for r in state.register_values()) else None


def _checked_records(states: dict[str, FlagState]) -> dict[str, str]:
    records: dict[str, str] = {}
    for name, state in states.items():
        try:
            check_ruby_safe("flag name", name)
            for user in sorted(state.users):
                check_ruby_safe("user id", user)
            for group in sorted(state.groups):
                check_ruby_safe("group name", group)
        except ValueError as exc:
            raise ValueError(f"flag {name!r}: {exc}; nothing was exported") from None
        records[name] = record_from_state(state, set_percentage=_set_percentage(state))
    return records


def cmd_export_ruby(flags: Rollout, args: argparse.Namespace) -> int:
    namespace: str | None = args.ruby_namespace
    states = ruby_states(flags)
    records = _checked_records(states)
    list_key = features_key(namespace)

    def write(pipe: Any) -> None:  # redis.client.Pipeline, WATCHing the feature list
        listed = parse_features_list(_text(list_key, pipe.get(list_key) or b"", "exported"))
        for name in records:
            listed = features_after_save(listed, name)
        pipe.multi()
        for name, record in records.items():
            pipe.set(feature_key(name, namespace), record.encode())
        pipe.set(list_key, features_list(listed).encode())

    client = _connect(args.redis)
    with _talking_to(client):
        if records:
            client.transaction(write, list_key)
    lost = [n for n, s in states.items() if s.excluded or s.time_percentage]
    if lost:
        print(
            f"rollout: note: {', '.join(lost)}: excluded users and percentage of time "
            "have no place in the Ruby format and were left out",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps({"exported": list(records)}, indent=2))
    else:
        where = f" (namespace {namespace})" if namespace else ""
        print(f"exported {len(records)} flags to Redis{where}")
    return 0
