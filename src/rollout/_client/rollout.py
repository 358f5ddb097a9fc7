"""The facade: :class:`Rollout`, the public API of the library."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._core import validate as _validate
from .._core.bucketing import Randomize
from .._core.clock import DEFAULT_MAX_OFFSET_MS, MIN_TIMESTAMP, HybridClock
from .._core.evaluate import ActiveCheck, build_active
from .._core.feature import Check, Feature
from .._core.history import (
    DEFAULT_HISTORY_LIMIT,
    current_context,
    default_node_name,
    history_key,
)
from .._core.specialize import specialize
from .._core.state import EXISTS, PERCENTAGE, Delta, Register
from ..errors import ClockSkewError, ClosedError, StoreUnavailableError
from ..stores import Store, open_store
from .control_api import ControlAPI
from .degrade_trackers import DegradeTrackers
from .history_api import HistoryAPI
from .override import Overrides
from .replica import Replica
from .replication import ReplicationAPI
from .wiring import make_ruby_mirror, make_transport
from .writes import FlagName, WriteAPI

if TYPE_CHECKING:
    from ssl import SSLContext

    from .._core.state import FlagState
    from ..redis._ruby_mirror import RubyMirror
    from ..sync import Transport

__all__ = ["Rollout"]

logger = logging.getLogger("rollout")

Predicate = Callable[[Any], object]
P = TypeVar("P", bound=Predicate)
T = TypeVar("T")
Subscriber = Callable[[set[str]], object]


class Rollout(WriteAPI, ReplicationAPI, HistoryAPI, ControlAPI):
    """Feature flags: checked locally in memory, changed from anywhere, never losing an edit.

    ``store`` is a :class:`~rollout.stores.Store` or a URL (``"sqlite:///flags.db"``); without
    one the flags live in this process's memory only. When the store cannot be reached at
    start and a transport can load it later (Redis, peers), the replica starts from its
    defaults (``start_offline=True``) or raises ``StoreUnavailableError`` (``False``).
    """

    #: ``active(name, user=None) -> bool``: whether the flag is on (for ``user``, a str/int id
    #: or an object with an id). Set per instance in ``__init__``: see rollout._evaluate.
    active: ActiveCheck

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        id_user_by: str | Callable[[Any], object] = "id",
        randomize_percentage: Randomize = False,
        defaults: Mapping[str, bool | float] | None = None,
        clock: Callable[[], int] | None = None,
        max_offset: float = DEFAULT_MAX_OFFSET_MS / 1000,
        listen: str | None = None,
        peers: Iterable[str] = (),
        secret: str | bytes | None = None,
        insecure: bool = False,
        ssl: SSLContext | None = None,
        client_ssl: SSLContext | None = None,
        transport: Transport | None = None,
        start_offline: bool = True,
        ruby_compat: bool = False,
        ruby_namespace: str | None = None,
        ruby_poll_interval: float = 1.0,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        node_name: str | None = None,
    ) -> None:
        _validate.rollout_options(randomize_percentage, max_offset, history_limit, node_name)
        self._history_limit = history_limit
        self.node_name = node_name or default_node_name()
        if ruby_compat and randomize_percentage is True:
            randomize_percentage = "ruby"  # the same users as the gem's randomized buckets
        self._id_of = _validate.id_getter(id_user_by)
        self._failed_groups: set[str] = set()
        self._clock = HybridClock(clock, max_offset_ms=int(max_offset * 1000))
        self._groups: dict[str, Predicate] = {}
        self._replica = Replica(
            randomize_percentage,
            self._groups,
            lambda check: specialize(check, self._id_of, self._user_id, self._group_failed),
            history_limit,
        )
        self._checks = self._replica.checks
        self._anonymous = self._replica.anonymous
        self._subscribers: list[Subscriber] = []
        self._write_lock = threading.Lock()
        self._closed = False
        self._clock_skew: str | None = None
        self._ruby: RubyMirror | None = None
        self._counters = dict.fromkeys(
            ("writes", "merges", "registers_rejected", "group_errors", "subscriber_errors"), 0
        )
        self._owns_store = isinstance(store, str)
        self._store: Store | None = open_store(store) if isinstance(store, str) else store
        if self._store is not None and not isinstance(self._store, Store):
            raise TypeError(f"store must be a Store, a URL string or None, got {store!r}")
        if self._store is not None:
            self._store.history_limit = max(self._store.history_limit, history_limit)
        if transport is None and listen is None and not peers and self._store is not None:
            transport = self._store.default_transport()
        if self._store is not None:
            can_wait = start_offline and (transport is not None or bool(peers))
            self._load_store(can_wait=can_wait)
        for name, value in (defaults or {}).items():
            self.set_default(name, value)
        # The hot path, as a closure on the instance: see rollout._evaluate for why.
        self.active = build_active(self._checks, self._anonymous, self._active_uncompiled)
        self._overrides = Overrides(self)
        self._degrades = DegradeTrackers(self._write, self.get, self.subscribe)
        self._transport = make_transport(
            transport,
            listen,
            peers,
            secret=secret,
            insecure=insecure,
            ssl=ssl,
            client_ssl=client_ssl,
        )
        if self._transport is not None:
            self._guard_fork()
            self._transport.start(self)
        self._ruby = make_ruby_mirror(self, ruby_compat, ruby_namespace, ruby_poll_interval)

    # Checks: the hot path. No lock, no I/O. -------------------------------------------------

    def _load_store(self, *, can_wait: bool) -> None:
        assert self._store is not None
        try:
            loaded = self._store.load()
        except StoreUnavailableError as exc:
            if not can_wait:
                raise
            # A service must be able to start while Redis is briefly away: it starts from its
            # defaults, checks answer, and the transport loads everything once it connects.
            logger.warning("starting without the store's flags for now: %s", exc)
            return
        self._replica.apply(loaded)
        # Stamp new writes after everything already stored, even if this machine's clock
        # went backwards since those were written.
        self._clock.observe(self._replica.latest_timestamp())

    def _active_uncompiled(self, name: object, user: object) -> bool:
        # An Enum member or str subclass: normalise and look again. Else the flag is unknown.
        normal = _validate.flag_name(name)
        if type(name) is not str:
            return self.active(normal, user)
        if user is not None:
            self._user_id(user)  # a bad user is an error even for an unknown flag
        return False

    def _group_failed(self, check: Check, predicate: Predicate, user: object) -> None:
        group = next((g for g in check.groups if self._groups.get(g) is predicate), "?")
        self._note_group_error(group, user)

    def _note_group_error(self, group: str, user: object) -> None:
        self._counters["group_errors"] += 1
        # The first failure of a group is logged with its traceback; repeats only at debug
        # level, or a broken predicate on a busy flag would flood the log.
        if group not in self._failed_groups:
            self._failed_groups.add(group)
            logger.exception("group %r predicate raised (user %r); it says no", group, user)
        else:
            logger.debug("group %r predicate raised again (user %r)", group, user)

    def inactive(self, name: FlagName, user: object = None) -> bool:
        return not self.active(name, user)

    def user_in_active_users(self, name: FlagName, user: object) -> bool:
        """Whether the user is listed on the flag (groups and percentages not considered)."""
        return self._user_id(user) in self._visible_users(_validate.flag_name(name))

    def active_in_group(self, group: FlagName, user: object) -> bool:
        """Whether the user belongs to the group (``all`` always; undefined groups never)."""
        return self._in_group(_validate.member_name(group, "group"), user)

    def _in_group(self, group: str, user: object) -> bool:
        if group == "all":
            return True
        predicate = self._groups.get(group)
        if predicate is None:
            return False
        try:
            return bool(predicate(user))
        except Exception:
            # A broken predicate must never break the caller's request: it says no.
            self._counters["group_errors"] += 1
            logger.exception(
                "group %r predicate raised for user %r; treating as not in group", group, user
            )
            return False

    def _user_id(self, user: object, argument: str = "user") -> str:
        return _validate.user_id(user, self._id_of, argument)

    # Groups ---------------------------------------------------------------------------------

    @overload
    def define_group(self, name: str, predicate: None = None) -> Callable[[P], P]: ...
    @overload
    def define_group(self, name: str, predicate: P) -> P: ...
    def define_group(self, name: str, predicate: P | None = None) -> P | Callable[[P], P]:
        """Define a named predicate over users; usable as ``@flags.define_group("admins")``."""
        group = _validate.member_name(name, "name")
        if group == "all":
            raise ValueError(
                "name 'all' is the built-in group of every user; it cannot be redefined"
            )

        def register(function: P) -> P:
            if not callable(function):
                raise TypeError(f"predicate must be callable, got {function!r}")
            self._groups[group] = function
            self._replica.recompile()
            # Answers of the flags that name this group change: tell subscribers (the
            # dashboard, the OpenFeature provider) as for any other change.
            self._notify({n for n in self.features() if group in self.get(n).groups})
            return function

        return register if predicate is None else register(predicate)

    def groups(self) -> list[str]:
        """The defined group names, ``all`` included."""
        return sorted({"all", *self._groups})

    # Reading --------------------------------------------------------------------------------

    def get(self, name: FlagName) -> Feature:
        """The flag's current state; an unknown flag gives an empty Feature."""
        return self._replica.feature(_validate.flag_name(name))

    def multi_get(self, *names: FlagName) -> list[Feature]:
        return [self.get(name) for name in names]

    def features(self) -> list[str]:
        """Names of every existing flag, sorted."""
        return self._replica.names()

    def exists(self, name: FlagName) -> bool:
        return _validate.flag_name(name) in self._checks

    def feature_states(self, user: object = None) -> dict[str, bool]:
        return {name: self.active(name, user) for name in self.features()}

    def active_features(self, user: object = None) -> list[str]:
        return [name for name in self.features() if self.active(name, user)]

    def _render_flag(self, name: str, render: Callable[[FlagState], T]) -> T | None:
        return self._replica.render(name, render)

    def _visible_users(self, name: str) -> frozenset[str]:
        return self._replica.users(name)

    # Defaults -------------------------------------------------------------------------------

    def set_default(self, name: FlagName, value: bool | float) -> None:
        """Declare the flag's state until a real write is made anywhere (True, False or a %).

        Defaults are local to this process: never stored, never sent to other replicas, and
        every real write wins over them, so a restarting process never resets a flag.
        """
        flag = _validate.flag_name(name)
        if isinstance(value, bool):
            pct = 100.0 if value else 0.0
        else:
            pct = _validate.percentage(value, "value")
        registers = {
            EXISTS: Register(MIN_TIMESTAMP, True),
            PERCENTAGE: Register(MIN_TIMESTAMP, pct),
        }
        self._replica.set_defaults(flag, registers)
        self._notify({flag})

    # Writes and replication -----------------------------------------------------------------

    def _write(self, changes: Mapping[str, Mapping[str, Any]], action: str) -> None:
        if self._closed:
            raise ClosedError("this Rollout is closed; writes are refused (checks still answer)")
        if self._clock_skew is not None:
            raise ClockSkewError(self._clock_skew)
        if self._ruby is not None:
            self._ruby.check(changes)
        with self._write_lock:
            ts = self._clock.tick()
            delta: Delta = {}
            actor, reason = current_context()
            for name, values in changes.items():
                registers = {key: Register(ts, value) for key, value in values.items()}
                registers.setdefault(EXISTS, Register(ts, True))
                if self._history_limit:
                    registers[history_key(ts)] = Register(
                        ts, self._event(name, values, action, actor, reason)
                    )
                delta[name] = registers
            if self._store is not None:
                self._store.save(delta)  # raises before anything changes here
            changed = self._replica.apply(delta)
            self._counters["writes"] += 1
            if self._transport is not None:
                # Inside the lock, so peers receive deltas in the order they were applied.
                self._transport.publish(delta)
        if self._ruby is not None:
            self._ruby.after_write(delta)
        self._notify(changed)

    # Subscriptions --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(changed_names)`` after every local write or merge that changes flags.

        Returns a function that unsubscribes. Callbacks run on the thread that made the change,
        holding no lock; an exception in one is logged and does not reach the writer.
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def _notify(self, changed: set[str]) -> None:
        if not changed:
            return
        for callback in self._subscribers:
            try:
                callback(set(changed))
            except Exception:
                self._counters["subscriber_errors"] += 1
                logger.exception("subscriber %r raised", callback)

    # Lifecycle ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters a person would want to see: writes, merges, rejections, errors, sync."""
        return {
            "node": f"{self._clock.node:016x}",
            "store": self._store.url if self._store is not None else "memory",
            "flags": len(self._checks),
            "closed": self._closed,
            **self._counters,
            "sync": self._transport.stats() if self._transport is not None else None,
            "ruby": dict(self._ruby.stats) if self._ruby is not None else None,
        }

    def close(self, timeout: float = 5.0) -> None:
        """Leave the cluster and release the store (if opened from a URL).

        Idempotent, and returns within about ``timeout`` seconds. Checks keep answering.
        """
        if self._closed:
            return
        self._closed = True
        if self._ruby is not None:
            self._ruby.close(timeout)
        if self._transport is not None:
            self._transport.close(timeout)
        if self._store is not None and self._owns_store:
            self._store.close()

    def __enter__(self) -> Rollout:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A Rollout dropped without close() must not leave its replication thread running.
        transport = getattr(self, "_transport", None)
        if transport is not None and not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # never raise from a finaliser
                transport.close(1.0)

    def __repr__(self) -> str:
        store = self._store.url if self._store is not None else "memory"
        return f"<Rollout store={store!r} flags={len(self._checks)}>"
