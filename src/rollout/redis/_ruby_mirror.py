"""Keep the Ruby rollout gem's keys current, both ways: ``Rollout(redis_url, ruby_compat=True)``.

Python → Ruby: after every local write, the writing process renders the gem's record of each
changed flag from its replica and writes it with the feature list, in one optimistic
transaction. It also keeps a copy of what it wrote in ``<namespace>:ruby:mirror``. Only the
writer renders, because only it knows whether the percentage was just set (the gem then writes
``20``, and ``20.0`` on any later save).

Ruby → Python: a poller (woken at once by keyspace notifications where the server sends them,
else every ``poll_interval`` seconds) reads the feature list and every record
with MGET. A record that differs from the mirror copy was written by a Ruby process: the
difference between the copy (the state Ruby started from) and the record is applied as ordinary
writes, so a concurrent Python change to anything else is never undone. Then the record is
rendered again from the merged state.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._core.history import write_context
from .._core.keys import GROUP, PERCENTAGE, RESET, RULES_ENTITY, USER, split_key
from .._core.state import Delta, FlagState
from .._core.validate import data_mapping, flag_name, member_name, name_problem, text
from .ruby import (
    RubyRecord,
    check_ruby_safe,
    diff_records,
    feature_key,
    features_after_delete,
    features_after_save,
    features_key,
    features_list,
    parse_features_list,
    parse_record,
    record_from_state,
)

if TYPE_CHECKING:
    import redis

__all__ = ["ApplyWrite", "Render", "RubyMirror"]

T = TypeVar("T")

#: The mirror's two ports into its replica, given by the Rollout that owns it (the mirror never
#: sees the facade). ``render(name, fn)``: ``fn`` applied to the flag's state under the
#: replica's lock, or None for a flag that does not exist.
Render = Callable[[str, Callable[[FlagState], Any]], Any]
#: ``apply_write(method, name, *args)``: one ordinary public write, e.g.
#: ``("activate_user", "chat", "42")``, so a Ruby change is checked, stamped, stored, replicated
#: and recorded like any other.
ApplyWrite = Callable[..., None]

logger = logging.getLogger("rollout.ruby")

_RETRIES = 10
#: Markers in RubyMirror._refused: no record refused yet; a name the rule refuses.
_NOTHING = object()
_BAD_NAME = "\x00 a flag name the rule refuses"
# The members the gem's record lists, by the kind check_ruby_safe checks.
_RUBY_MEMBERS = {USER: "user id", GROUP: "group name"}


class RubyMirror:
    """A write hook of its Rollout (before_write / after_write) and a poller of Ruby's keys."""

    def __init__(
        self,
        render: Render,
        apply_write: ApplyWrite,
        client: redis.Redis,
        *,
        namespace: str,
        ruby_namespace: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
            raise TypeError(f"ruby_poll_interval must be a number, got {poll_interval!r}")
        if poll_interval <= 0:
            raise ValueError(f"ruby_poll_interval must be positive, got {poll_interval!r}")
        self._render = render
        self._apply_write = apply_write
        self.client = client
        self.ruby_namespace = ruby_namespace
        self.mirror_key = f"{namespace}:ruby:mirror"
        self.poll_interval = poll_interval
        self._applying = threading.local()
        #: Flag -> the Ruby record refused for it, skipped (and not logged again) until it changes.
        self._refused: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = dict.fromkeys(
            ("records_written", "ruby_changes_applied", "errors", "keyspace_notifications"), 0
        )

    # Python -> Ruby ---------------------------------------------------------------------------

    def before_write(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse, before anything is written, what the gem's format cannot hold."""
        for name, values in changes.items():
            if name == RULES_ENTITY:
                continue  # named rules: no flag of the gem's
            check_ruby_safe("flag name", name)
            for key in values:
                split = split_key(key)
                if split is not None and split[0] in _RUBY_MEMBERS:
                    check_ruby_safe(_RUBY_MEMBERS[split[0]], split[1])

    def after_write(self, delta: Delta) -> None:
        """Render and write the records of the flags a local write changed. Never raises."""
        if getattr(self._applying, "active", False):
            return  # applying a Ruby change: rendered once at the end instead
        for name, registers in delta.items():
            if name == RULES_ENTITY:
                continue  # named rules have no record in the gem's format
            set_now: int | float | None = None
            if RESET in registers:
                set_now = 0  # deactivate/delete: the gem sets the Integer 0
            if PERCENTAGE in registers:
                value = float(registers[PERCENTAGE].value)
                set_now = int(value) if value.is_integer() else value
            self.write_record(name, set_now)

    def write_record(self, name: str, set_now: int | float | None = None) -> None:
        import redis

        key = feature_key(name, self.ruby_namespace)
        list_key = features_key(self.ruby_namespace)
        try:
            with self.client.pipeline() as pipe:
                for _ in range(_RETRIES):
                    try:
                        pipe.watch(key, list_key)  # type: ignore[no-untyped-call]
                        previous = _parse_or_none(pipe.get(key))
                        names = parse_features_list(_text(pipe.get(list_key)) or "")
                        if previous is None and set_now is None:
                            set_now = 0  # a new record: the gem starts a flag at the Integer 0
                        render = functools.partial(
                            record_from_state, set_percentage=set_now, previous=previous
                        )
                        record = self._render(name, render)
                        pipe.multi()
                        if record is None:
                            pipe.delete(key)
                            pipe.set(list_key, features_list(features_after_delete(names, name)))
                            pipe.hdel(self.mirror_key, name)
                        else:
                            pipe.set(key, record)
                            pipe.set(list_key, features_list(features_after_save(names, name)))
                            pipe.hset(self.mirror_key, name, record)
                        pipe.execute()
                        self.stats["records_written"] += 1
                        return
                    except redis.WatchError:
                        continue  # a Ruby process wrote meanwhile: read again
            logger.warning("gave up writing the Ruby record of %r: it kept changing", name)
        except redis.RedisError as exc:
            self.stats["errors"] += 1
            logger.warning("could not write the Ruby record of %r: %s", name, exc)

    # Ruby -> Python ---------------------------------------------------------------------------

    def poll(self) -> set[str]:
        """One round: apply what Ruby processes changed since; returns those flag names.

        A record that cannot be applied (a name or value our rules refuse, data nested too
        deep, bytes that are not UTF-8) is isolated to its flag: logged once, counted in
        ``errors``, skipped until it changes; every other flag goes on.
        """
        client = self.client
        mirror = {_str(k): _str(v) for k, v in client.hgetall(self.mirror_key).items()}
        listed = parse_features_list(_text(client.get(features_key(self.ruby_namespace))) or "")
        names = list(dict.fromkeys([*listed, *mirror]))
        if not names:
            return set()
        names = [name for name in names if self._usable_name(name)]
        if not names:
            return set()
        records = client.mget([feature_key(n, self.ruby_namespace) for n in names])
        changed: set[str] = set()
        for name, raw in zip(names, records, strict=True):
            current, base = _text(raw), mirror.get(name)
            if current == base or self._refused.get(name, _NOTHING) == current:
                continue  # still what Python last wrote, or a bad record already reported
            try:
                new, writes = self._read_change(name, current, base)
            except ValueError as exc:
                self._refuse(name, current, str(exc))
                continue
            self._refused.pop(name, None)
            self._apply(name, writes, new)
            changed.add(name)
        return changed

    def _read_change(
        self, name: str, current: str | None, base: str | None
    ) -> tuple[RubyRecord | None, list[tuple[str, tuple[Any, ...]]]]:
        """The record Ruby wrote and the writes it means, every one checked before any is made
        (so a record is applied whole or not at all); ValueError saying what is wrong."""
        try:
            flag_name(name, "flag name")
            new = parse_record(current) if current is not None else None
            old = parse_record(base) if base is not None else None
            writes = diff_records(old, new)
            for method, args in writes:
                _check_write(method, args)
        except (TypeError, RecursionError) as exc:
            raise ValueError(str(exc)) from None
        return new, writes

    def _usable_name(self, name: str) -> bool:
        """Whether the naming rule takes a name from Ruby's list (a refused one is logged once)."""
        problem = name_problem(name)
        if problem is None:
            return True
        if self._refused.get(name, _NOTHING) is not _BAD_NAME:
            self._refuse(name, _BAD_NAME, f"flag name {problem}")
        return False

    def _refuse(self, name: str, current: str | None, problem: str) -> None:
        self._refused[name] = current
        self.stats["errors"] += 1
        logger.error(
            "ignoring the Ruby record of %r until it changes (other flags go on): %.300s",
            name,
            problem,
        )

    def _apply(
        self, name: str, writes: list[tuple[str, tuple[Any, ...]]], record: RubyRecord | None
    ) -> None:
        self._applying.active = True
        try:
            with write_context("ruby", "a Ruby process changed the record"):
                for method, args in writes:
                    self._apply_write(method, name, *args)
        finally:
            self._applying.active = False
        self.stats["ruby_changes_applied"] += 1
        # Rendered again (concurrent Python changes join in), keeping the percentage as Ruby
        # wrote it: "0" stays "0", so a record that Ruby wrote comes back unchanged.
        as_written: int | float | None = None
        if record is not None and record.percentage_text.lstrip("+-").isdigit():
            as_written = int(record.percentage)
        self.write_record(name, as_written)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollout-ruby", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        notifications = self._subscribe_to_keyspace()
        try:
            while not self._stop.is_set():
                if notifications is not None:
                    # A Ruby write wakes us at once; the timeout keeps the periodic poll.
                    with contextlib.suppress(Exception):
                        notifications.get_message(timeout=self.poll_interval)
                        while notifications.get_message(timeout=0.01) is not None:
                            pass  # one poll covers every key that changed
                elif self._stop.wait(self.poll_interval):
                    return
                try:
                    self.poll()
                except Exception as exc:  # Redis away, a bad record: try again next round
                    self.stats["errors"] += 1
                    logger.warning("polling the Ruby rollout keys failed: %s", exc)
        finally:
            if notifications is not None:
                notifications.close()

    def _subscribe_to_keyspace(self) -> Any:
        """Keyspace notifications for the gem's keys, where the server has them enabled.

        Many managed Redis services forbid CONFIG or keep notifications off; then polling
        alone (every ``poll_interval`` seconds) picks Ruby's changes up.
        """
        try:
            events = self.client.config_get("notify-keyspace-events")
            flags = str(next(iter(events.values()), "")) if events else ""
            if "K" not in flags or not ("$" in flags or "A" in flags or "g" in flags):
                return None
            db = int(self.client.connection_pool.connection_kwargs.get("db", 0))
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"__keyspace@{db}__:{feature_key('*', self.ruby_namespace)}")
            self.stats["keyspace_notifications"] = 1
            return pubsub
        except Exception as exc:  # CONFIG refused, an older server: poll
            logger.info(
                "no keyspace notifications (%s); polling every %g s", exc, self.poll_interval
            )
            return None

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


def _text(value: bytes | str | None) -> str | None:
    # Bytes that are not UTF-8 become lone surrogates, which the checks then refuse for the one
    # flag (or name) that holds them, instead of one bad key failing every round.
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else value


def _str(value: bytes | str) -> str:
    return value.decode(errors="surrogateescape") if isinstance(value, bytes) else value


def _check_write(method: str, args: tuple[Any, ...]) -> None:
    """The argument checks of the public write ``method`` (the facade repeats them)."""
    if method in ("activate_group", "deactivate_group"):
        member_name(args[0], "group")
    elif method in ("activate_users", "deactivate_users"):
        for user in args[0]:
            text(user, "user id")
    elif method == "set_feature_data":
        data_mapping(args[0])


def _parse_or_none(raw: bytes | str | None) -> RubyRecord | None:
    text = _text(raw)
    if text is None:
        return None
    try:
        return parse_record(text)
    except ValueError:
        return None  # a malformed record is replaced by a good one
