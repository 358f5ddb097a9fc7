"""The facade: :class:`Rollout`, the public API of the library.

``Rollout`` holds no replication logic of its own. It is composed of parts, each one concept:

* the replica (rollout._client.replica): every flag's registers, compiled checks and digests;
* the write pipeline (rollout._client.pipeline): the one path of every local write and every
  merge, with its seams for the transport (through rollout._client.sync_port, never the
  facade), write hooks (the Ruby mirror) and subscribers;
* the check slot (rollout._client.check_slot): what ``flags.active`` is, so overrides and the
  metrics sampler wrap the check without knowing of each other;
* overrides, degrade trackers, and the store and transport it was given or opened.

Its methods check their arguments and say what to change, in one write each; the parts do the
rest. It is the one long module of the package on purpose: every public method is here, in one
place, each a few lines over the parts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from functools import partial
from random import random
from types import TracebackType

from .._core import native
from .._core import validate as _validate
from .._core.bucketing import Randomize
from .._core.clock import DEFAULT_MAX_OFFSET_MS, MIN_TIMESTAMP, HybridClock
from .._core.codec import decode, entity_name
from .._core.context import MappingUser, context_reader
from .._core.defined import DefinedCheck
from .._core.evaluate import build_active
from .._core.feature import Check, Feature
from .._core.history import DEFAULT_HISTORY_LIMIT, write_context
from .._core.keys import (
    DATA,
    DATA_RESET,
    DEFINITION_RESET,
    EXCLUDE,
    EXISTS,
    GROUP,
    PERCENTAGE,
    RESET,
    TIME,
    USER,
)
from .._core.lazy import LazyModule
from .._core.specialize import check_id, getattr_reads_id, plain_attribute, specialize
from .._core.state import Register
from .._core.validate import FlagName, data_mapping, flag_name, member_name, percentage
from ..errors import RolloutError
from ..stores import Store, open_store
from .check_slot import CheckSlot
from .definitions import DefinitionsAPI
from .degrade import Degrade, OnDegrade
from .degrade_trackers import DegradeTrackers
from .log import logger
from .override import Override, Overrides
from .pipeline import Subscriber, WritePipeline
from .replica import Replica
from .sync_port import SyncPort
from .wiring import make_ruby_mirror, make_transport

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence
    from ssl import SSLContext
    from typing import Any, TypeAlias, TypeVar, overload

    from .._core import explain as _explain
    from .._core.evaluate import ActiveCheck
    from .._core.explain import Decision, Explanation
    from .._core.history_event import HistoryEvent
    from .._core.quarantined import QuarantinedRegister
    from ..sync import Transport

    Predicate: TypeAlias = "Callable[[Any], object]"
    P = TypeVar("P", bound=Predicate)
else:
    # Loaded by the first explain(): its dataclass loads dataclasses, inspect and ast.
    _explain = LazyModule("rollout._core.explain")

__all__ = ["Rollout"]


#: The names of the flags a merge changed. (Spelled once out here: inside the class body,
#: ``set`` is the method ``Rollout.set``.)
Changed = set[str]

_DELETE: Mapping[str, Any] = {RESET: None, DATA_RESET: None, DEFINITION_RESET: None, EXISTS: False}

#: An argument not given (None is a value, refused with its own message).
_UNSET: Any = object()

#: True while the Ruby mirror replays a change of the gem's record (``_apply_write``): the gem
#: creates a flag on any save, ``deactivate`` included, so on that path a removal from a flag
#: that does not exist here creates it, as it did in Ruby, instead of raising.
_GEM_REPLAY: ContextVar[bool] = ContextVar("rollout_gem_replay", default=False)

#: Events recorded even when they change nothing visible: an operator's judgment of held
#: registers is worth a line in history whatever it changed.
_ALWAYS_RECORDED = frozenset({"quarantine_accept", "quarantine_drop"})


class _SignatureOfInit:
    """``inspect.signature(Rollout)``: ``__init__``'s arguments. With ``__new__`` defined,
    inspect would give ``__new__``'s ``(*args, **kwargs)``, and code that checks options
    against the signature (the framework integrations, an IDE) would accept any keyword."""

    def __get__(self, instance: object, owner: type) -> Any:
        import inspect  # only when asked: inspect takes milliseconds to import

        init = inspect.signature(owner.__init__)  # type: ignore[misc]
        return init.replace(
            parameters=list(init.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )


#: Marks the class a Rollout made for itself (``Rollout.__new__``).
_OWN_CLASS = "_rollout_own_class"


def _hooks_subclassing(cls: type) -> bool:
    """Whether a class of ``cls``'s ancestry defines ``__init_subclass__`` (object's aside)."""
    return any("__init_subclass__" in vars(base) for base in cls.__mro__[:-1])


def default_node_name() -> str:
    """Where this process's changes are recorded as made, unless ``node_name`` says."""
    return f"{_host_name()}:{os.getpid()}"


def _host_name() -> str:
    # os.uname() is what socket.gethostname() reads on POSIX, without importing socket (7% of
    # `import rollout` by `python -X importtime` when it was eager); other systems ask socket.
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


class Rollout(DefinitionsAPI):
    """Feature flags: checked locally in memory, changed from anywhere, never losing an edit.

    ``store`` is a :class:`~rollout.stores.Store` or a URL (``"sqlite:///flags.db"``); without
    one the flags live in this process's memory only. When the store cannot be reached at
    start and a transport can load it later (Redis, peers), the replica starts from its
    defaults (``start_offline=True``) or raises ``StoreUnavailableError`` (``False``).
    """

    if TYPE_CHECKING:
        active: ActiveCheck
    else:

        def active(self, name: FlagName, user: object = None) -> bool:
            """Whether the flag ``name`` is on for ``user``: a str or int id (``42`` and
            ``"42"`` are the same user), an object with an id (read with ``id_user_by``), or
            None for a check without a user (on only at 100%, or by a percentage-of-time draw).

            In order: an excluded user is off; a draw below the percentage of time, 100% of
            users or the group ``all``, a listed user, the user's bucket below the percentage,
            or a group whose predicate says yes turns it on; else it is off. An unknown flag is
            off. No lock and no I/O: answered from memory. ``flags.explain(name, user)`` says
            which rule decided. A user that is not a str, int or object with an id raises
            TypeError; an empty id, ValueError.
            """
            # Documentation only: every Rollout has a class of its own (``__new__``) whose
            # ``active`` is the compiled check (rollout._client.check_slot), which overrides
            # this method; it runs only when called through this class,
            # ``Rollout.active(flags, name)``.
            check: ActiveCheck = self.active
            return check(name, user)

    #: Where this process's changes are recorded as made (``Rollout(node_name=...)``).
    node_name: str

    __signature__ = _SignatureOfInit()

    def __new__(cls, *args: Any, **kwargs: Any) -> Rollout:  # noqa: ARG004
        # A class of this instance's own, under the same name, so that its compiled check can
        # be a method of the class: ``flags.active(...)`` is then a specialised method call
        # rather than the generic lookup of a callable stored on the instance (see
        # rollout._core.evaluate). Made before any attribute is set, so they stay inline.
        base = cls.__bases__[0] if _OWN_CLASS in vars(cls) else cls  # copy.copy() of a Rollout
        if _hooks_subclassing(base):
            # An application's subclass with an __init_subclass__ of its own: making a class
            # would run it (and fail if it takes keywords). Such a Rollout keeps its check on
            # the instance, at the cost of the generic attribute lookup.
            plain: Rollout = super().__new__(base)
            return plain
        own = type(
            base.__name__,
            (base,),
            {"__module__": base.__module__, "__doc__": base.__doc__, _OWN_CLASS: True},
        )
        own.__qualname__ = base.__qualname__
        instance: Rollout = super().__new__(own)
        return instance

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
        transport: Transport | str | None = None,
        start_offline: bool = True,
        ruby_compat: bool = False,
        ruby_namespace: str | None = None,
        ruby_poll_interval: float = 1.0,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        node_name: str | None = None,
    ) -> None:
        _validate.rollout_options(randomize_percentage, max_offset, history_limit, node_name)
        self.node_name = node_name or default_node_name()
        if ruby_compat and randomize_percentage is True:
            randomize_percentage = "ruby"  # the same users as the gem's randomized buckets
        id_user_by = _validate.id_user_by_argument(id_user_by)
        self._id_of = _validate.id_getter(id_user_by)
        # The compiled checks read an attribute id themselves (user.id, not an attrgetter call).
        id_attribute = (
            id_user_by if isinstance(id_user_by, str) and plain_attribute(id_user_by) else ""
        )
        #: The attribute the compiled checks read as the id ("" for a callable id_user_by).
        self._id_attribute = id_attribute
        self._failed_groups: set[str] = set()
        # The C accelerator or None: read once, so every check of this Rollout is made alike.
        speedups = native.speedups
        self._speedups = speedups  # and the OpenFeature provider's resolutions
        self._groups: dict[str, Predicate] = {}
        self._replica = Replica(
            randomize_percentage,
            self._groups,
            lambda check: specialize(
                check,
                self._id_of,
                self._user_id,
                self._group_failed,
                id_attribute=id_attribute,
                speedups=speedups,
            ),
            history_limit,
            context_of=context_reader(self._id_of),
            on_rule_error=self._note_rule_error,
            inline_percentages=getattr_reads_id(id_attribute),
        )
        self._checks = self._replica.checks
        self._owns_store = isinstance(store, str)
        opened: Store | None = open_store(store) if isinstance(store, str) else store
        if opened is not None and not isinstance(opened, Store):
            raise TypeError(f"store must be a Store, a URL string or None, got {store!r}")
        self._store = opened
        try:
            if opened is not None:
                opened.history_limit = max(opened.history_limit, history_limit)
            # Made (its arguments checked) before anything starts, started last: a mistake in
            # them must not first bind a port, dial peers or subscribe.
            self._ruby = make_ruby_mirror(
                self._replica.render,
                self._apply_write,
                self._store,
                ruby_compat=ruby_compat,
                ruby_namespace=ruby_namespace,
                poll_interval=ruby_poll_interval,
            )
            self._pipeline = WritePipeline(
                self._replica,
                HybridClock(clock, max_offset_ms=int(max_offset * 1000)),
                opened,
                history_limit=history_limit,
                event=self._event,
            )
            if transport is None and listen is None and not peers and opened is not None:
                transport = opened.default_transport()
            can_wait = start_offline and (transport is not None or bool(peers))
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
                # Registers of the store that look like the future are judged once peers have
                # judged this clock (it may be the one that is behind), not at load.
                self._pipeline.defer_future_store = self._transport.awaits_clock_confirmation
            self._pipeline.load_store(can_wait=can_wait)
            for name, value in (defaults or {}).items():
                self.set_default(name, value)
            # The hot path, a function over the replica's dicts (rollout._core.evaluate),
            # published as self.active by the slot, which overrides and the metrics sampler wrap.
            self._active_method = build_active(
                self._checks,
                self._replica.anonymous,
                self._replica.user_checks,
                self._active_uncompiled,
                percentage_bounds=self._replica.percentage_bounds,
                id_attribute=id_attribute,
                user_id=self._user_id,
                speedups=speedups,
            )
            # The same check called as a plain function, for the wrappers that fall back to it.
            self._check_slot_compiled: ActiveCheck = partial(self._active_method, None)
            self._check_slot = CheckSlot(self._check_slot_compiled, self._publish_check)
            self._overrides = Overrides(self._check_slot, self._check_id)
            # A tripped tracker switches off an existing flag; one deleted meanwhile stays deleted.
            self._degrades = DegradeTrackers(
                lambda changes, action: self._pipeline.write(changes, action, must_exist=True),
                self.get,
                self.subscribe,
            )
            self._pipeline.transport = self._transport
            if self._transport is not None:
                self._pipeline.guard_fork()
                self._transport.start(SyncPort(self._pipeline))
            if self._ruby is not None:
                self._pipeline.hooks.append(self._ruby)
                self._ruby.start()
        except BaseException:
            self._release_half_made()
            raise

    def _release_half_made(self) -> None:
        """Release what a failed ``__init__`` made: nobody holds a half-made Rollout to close it,
        so a store it opened from a URL kept its file or connection, and a transport its thread,
        until the garbage collector came (a damaged SQLite row, a listen address in use)."""
        pipeline = getattr(self, "_pipeline", None)
        if pipeline is not None:
            pipeline.closed = True  # __del__ then leaves the transport alone: closed here
        for part in (getattr(self, "_ruby", None), getattr(self, "_transport", None)):
            if part is not None:
                try:
                    part.close(5.0)  # as close(): returns once its thread has ended
                except Exception as exc:  # the failure that got us here is the one to raise
                    logger().warning("closing a Rollout that failed to start: %s", exc)
        try:
            self._close_store(5.0)
        except Exception as exc:
            logger().warning("closing a Rollout that failed to start: %s", exc)

    def _publish_check(self, check: ActiveCheck) -> None:
        # The bare compiled check is published as the method it was built as; a chain of
        # wrappers (overrides, the metrics sampler) as a static method, at a small cost. A
        # Rollout without a class of its own (see __new__) holds its check on the instance.
        own = type(self)
        if _OWN_CLASS not in vars(own):
            self.__dict__["active"] = check
        elif check is self._check_slot_compiled:
            own.active = self._active_method  # type: ignore[assignment]
        else:
            own.active = staticmethod(check)

    def _apply_write(self, method: str, name: str, *args: Any) -> None:
        # The Ruby mirror's way in: a change read from the gem's record becomes the public
        # write of the same name, checked and recorded like any other; with the gem's rule
        # that every save, a removal too, creates the flag (_GEM_REPLAY).
        token = _GEM_REPLAY.set(True)
        try:
            getattr(self, method)(name, *args)
        finally:
            _GEM_REPLAY.reset(token)

    # Checks: the hot path is self.active. No lock, no I/O. -------------------------------------

    def _active_uncompiled(self, name: object, user: object) -> bool:
        # An Enum member or str subclass: normalise and look again. Else the flag is unknown.
        normal = _validate.flag_name(name)
        if type(name) is not str:
            return self.active(normal, user)
        if user is not None:
            # A user the check would refuse is an error even for an unknown flag; what the
            # check answers for (any str id) is answered for here too.
            self._check_id(user)
        return False

    def _note_rule_error(self) -> None:
        # A targeting rule or named rule that failed in a check: it answered as flagd does (the
        # default, reason ERROR; a group says no). Counted, never raised.
        self._pipeline.counters["rule_errors"] += 1

    def _group_failed(self, check: Check, predicate: Predicate, user: object) -> None:
        group = next((g for g in check.groups if self._groups.get(g) is predicate), "?")
        self._note_group_error(group, user)

    def _note_group_error(self, group: str, user: object) -> None:
        self._pipeline.counters["group_errors"] += 1
        # The first failure of a group is logged with its traceback; repeats only at debug
        # level, or a broken predicate on a busy flag would flood the log.
        if group not in self._failed_groups:
            self._failed_groups.add(group)
            logger().exception("group %r predicate raised (user %r); it says no", group, user)
        else:
            logger().debug("group %r predicate raised again (user %r)", group, user)

    def explain(self, name: FlagName, user: object = None) -> Explanation:
        """Why ``active(name, user)`` answers what it does: the rule that decided, with numbers.

        Its ``active`` is what ``active()`` answers for the same input (for a percentage of the
        time, given the same draw, which it reports). ``user`` may also be a mapping context
        (``targetingKey`` and attributes), read as :meth:`evaluate` reads it. The explanation
        is of one version of the flag, the one it had once ``user`` was read (a change made
        meanwhile, by a predicate or another thread, is no part of it).
        See :class:`rollout.Explanation`.
        """
        # A known flag's name is valid: skip validating it.
        flag = name if type(name) is str and name in self._checks else _validate.flag_name(name)
        uid, subject = self._subject(user)
        forced = self._overrides.answers.get(flag)
        if forced is not None:
            return _explain.explain_override(flag, uid, forced)
        check = self._checks.get(flag)  # the flag's one read: everything below is of its version
        if check is None:
            return _explain.explain_unknown(flag, uid)
        if type(check) is DefinedCheck:
            resolution = check.compiled.resolve(flag, self._replica.context_of(subject))
            return _explain.explain_definition(flag, uid, resolution)
        decision = self._decision(check, uid, subject)
        explanation = _explain.explained(check, uid, decision)
        group = decision[4]
        if group is not None and group not in self._groups:  # a named rule said yes
            message = f"on: the named rule {group!r} (a group) says yes"
            explanation = _explain.amended(explanation, message=message)
        return explanation

    def _subject(self, user: object) -> tuple[str | None, object]:
        """The id a check reads of ``user`` (None: no user) and what its rules receive: a
        mapping context is read as the OpenFeature provider reads one (its ``targetingKey`` is
        the id, its attributes the groups'); a user without a usable id raises as a check does."""
        if isinstance(user, Mapping):  # flagd's context, as active() of a defined flag takes it
            subject = MappingUser(user)
            return subject.id, subject
        return (None if user is None else self._check_id(user)), user

    def _decision(self, check: Check, uid: str | None, user: object) -> Decision:
        """Which rule decides ``check`` (an on/off flag's, of one version) for the user whose
        id, as the check reads it, is ``uid`` (None: no user), and its numbers: with a user, the
        check's decision function (rollout._core.decide, built on its first decision), about
        half the cost of the walk. A mapping context without a key is answered by the check
        without a user, then, if that says no, by the check's own groups (a group needs
        attributes, not an id), as the OpenFeature provider answers it."""
        if uid is not None:
            decide = check.decide
            if decide is None:  # two threads may both build it: the same function
                # Imported here: only targeted decisions need it (it compiles code).
                from .._core.decide import specialize_decision

                decide = check.decide = specialize_decision(check, self._group_failed)
            decision: Decision = decide(uid, user)
            return decision
        decision = _explain.decide_check(check, None, None, self._explain_group, random)
        if decision[0] or not isinstance(user, MappingUser) or not user.attributes:
            return decision
        group = self._group_saying_yes(check, user)
        if group is None:
            return decision
        return (True, "group", *decision[2:4], group, *decision[5:])

    def _group_saying_yes(self, check: Check, user: object) -> str | None:
        """The first of ``check``'s groups whose predicate says yes to ``user``, by the check's
        own predicates (a named rule's of the check's version), in its order; None if none
        does. A predicate that raises says no, counted and logged, as in the check."""
        for group, predicate in zip(check.predicate_groups, check.predicates, strict=True):
            try:
                if predicate(user):
                    return group
            except Exception:
                self._group_failed(check, predicate, user)
        return None

    def _explain_group(self, group: str, user: object) -> bool:
        # As the compiled check runs a predicate: undefined says no, one that raises says no
        # and is counted and logged once. A group without a predicate in code is the named
        # rule of that name, if there is one. (The two dicts are asked in turn: their ChainMap,
        # replica.group_predicates, costs a microsecond a lookup, and the OpenFeature provider
        # asks this on every targeted check.)
        predicate = self._groups.get(group)
        if predicate is None:
            predicate = self._replica.rule_groups.get(group)
            if predicate is None:
                return False
        try:
            return bool(predicate(user))
        except Exception:
            self._note_group_error(group, user)
            return False

    def inactive(self, name: FlagName, user: object = None) -> bool:
        return not self.active(name, user)

    def user_in_active_users(self, name: FlagName, user: object) -> bool:
        """Whether the user is listed on the flag (groups and percentages not considered)."""
        return self._user_id(user) in self._replica.users(_validate.flag_name(name))

    def active_in_group(self, group: FlagName, user: object) -> bool:
        """Whether the user belongs to the group (``all`` always; undefined groups never).

        A group without a predicate in code is the named rule of that name, if there is one,
        as in a flag's check."""
        return self._in_group(_validate.member_name(group, "group"), user)

    def _in_group(self, group: str, user: object) -> bool:
        if group == "all":
            return True
        predicate = self._replica.group_predicates.get(group)
        if predicate is None:
            return False
        try:
            return bool(predicate(user))
        except Exception:
            # A broken predicate must never break the caller's request: it says no.
            self._pipeline.counters["group_errors"] += 1
            logger().exception(
                "group %r predicate raised for user %r; treating as not in group", group, user
            )
            return False

    def _user_id(self, user: object, argument: str = "user") -> str:
        return _validate.user_id(user, self._id_of, argument)

    def _check_id(self, user: object) -> str:
        # The id a check uses: writes refuse an empty or unencodable id, checks answer for it.
        return check_id(user, self._id_of, self._user_id)

    # Groups ---------------------------------------------------------------------------------

    if TYPE_CHECKING:  # (typing's overload is not loaded at run time)

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
            self._pipeline.notify({n for n in self.features() if group in self.get(n).groups})
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
        """Every flag's answer for ``user`` (overridden flags included, written or not)."""
        names: Sequence[str] = self.features()
        forced = self._overrides.values
        if forced:
            names = sorted({*names, *forced})
        active = self.active
        return {name: active(name, user) for name in names}

    def active_features(self, user: object = None) -> list[str]:
        return [name for name, on in self.feature_states(user).items() if on]

    # Defaults -------------------------------------------------------------------------------

    def set_default(self, name: FlagName, value: bool | float) -> None:
        """Declare the flag's state until a real write is made anywhere (True, False or a %).

        Defaults are local to this process: never stored, never sent to other replicas, and
        every real write wins over them, so a restarting process never resets a flag.
        """
        flag = _validate.flag_name(name)
        if isinstance(value, bool):
            share = 100.0 if value else 0.0
        else:
            share = _validate.percentage(value, "value")
        registers = {
            EXISTS: Register(MIN_TIMESTAMP, True),
            PERCENTAGE: Register(MIN_TIMESTAMP, share),
        }
        self._replica.set_defaults(flag, registers)
        self._pipeline.notify({flag})

    # Writes: each checks all of its arguments first, then makes exactly one write (one
    # timestamp), so bad input never leaves a flag half-changed. An add (activate_*, exclude_*,
    # set_*) creates a flag that does not exist; a removal (deactivate_*, include_*, clear_*,
    # delete) from one raises UnknownFlagError and writes nothing: a typo in a name must not
    # bring a flag into being, and the CLI and the HTTP API follow the same rule. -----------

    # Whole flag -----------------------------------------------------------------------------

    def activate(self, name: FlagName) -> None:
        """On for everybody (percentage 100). Users, groups and exclusions stay as they are."""
        self._write({flag_name(name): {PERCENTAGE: 100.0}}, "activate")

    def deactivate(self, name: FlagName) -> None:
        """Off for everybody: percentages, users, exclusions and groups are all cleared.

        One register (the ``reset`` watermark): a user added concurrently elsewhere with a later
        timestamp survives, as it should. Data is kept. ``UnknownFlagError`` when the flag does
        not exist (``set(name, False)`` creates it off).
        """
        self._remove({flag_name(name): {RESET: None}}, "deactivate")

    def set(self, name: FlagName, on: bool) -> None:
        """Make the flag exist and be on for everybody (``on`` true) or off for everybody.

        Declarative, for configuration as code: ``set(name, False)`` is ``deactivate`` on a flag
        that exists and creates the flag, off, when it does not (never ``UnknownFlagError``).
        """
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool, got {on!r}")
        if on:
            self.activate(name)
        else:
            self._write({flag_name(name): {RESET: None}}, "deactivate")

    def delete(self, name: FlagName) -> None:
        """Forget the flag: targeting and data cleared, and it leaves ``features()``.

        ``UnknownFlagError`` when it does not exist.
        """
        self._remove({flag_name(name): _DELETE}, "delete")

    def clear(self) -> None:
        """Delete every flag (one write): ``features()`` is empty afterwards."""
        names = self.features()
        if names:
            self._pipeline.write(dict.fromkeys(names, _DELETE), "clear")

    # Users ----------------------------------------------------------------------------------

    def activate_user(self, name: FlagName, user: object) -> None:
        self._write({flag_name(name): {USER + self._user_id(user): True}}, "activate_user")

    def deactivate_user(self, name: FlagName, user: object) -> None:
        self._remove({flag_name(name): {USER + self._user_id(user): False}}, "deactivate_user")

    def activate_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, USER), True)}, "activate_users"
        )

    def deactivate_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._remove(
            {flag_name(name): dict.fromkeys(self._user_keys(users, USER), False)},
            "deactivate_users",
        )

    def set_users(self, name: FlagName, users: Iterable[object]) -> None:
        """Make the listed users exactly these (others listed now are removed)."""
        name = flag_name(name)
        wanted = set(self._user_keys(users, USER))
        removed = {USER + uid for uid in self._replica.users(name)} - wanted
        changes: dict[str, Any] = dict.fromkeys(removed, False)
        changes.update(dict.fromkeys(wanted, True))
        self._write({name: changes}, "set_users")

    def exclude_user(self, name: FlagName, user: object) -> None:
        """Never on for this user, whatever users, groups and percentages say."""
        self._write({flag_name(name): {EXCLUDE + self._user_id(user): True}}, "exclude_user")

    def include_user(self, name: FlagName, user: object) -> None:
        """Undo ``exclude_user``."""
        self._remove({flag_name(name): {EXCLUDE + self._user_id(user): False}}, "include_user")

    def exclude_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, EXCLUDE), True)}, "exclude_users"
        )

    def include_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._remove(
            {flag_name(name): dict.fromkeys(self._user_keys(users, EXCLUDE), False)},
            "include_users",
        )

    def _write(self, changes: Mapping[str, Mapping[str, Any]], action: str) -> None:
        self._pipeline.write(changes, action)

    def _remove(self, changes: Mapping[str, Mapping[str, Any]], action: str) -> None:
        # Checked by the pipeline under its write lock, so a removal racing a local delete
        # never brings the flag back. Replaying the Ruby gem's writes keeps the gem's rule.
        self._pipeline.write(changes, action, must_exist=not _GEM_REPLAY.get())

    def _user_keys(self, users: Iterable[object], prefix: str) -> list[str]:
        if isinstance(users, str | bytes) or not isinstance(users, Iterable):
            raise TypeError(f"users must be an iterable of users, got {users!r}")
        users = list(users)  # read twice when one is refused
        try:
            return [prefix + self._user_id(user, "users item") for user in users]
        except (TypeError, ValueError):
            # Name the refused one by its place, as the API does (users[1]); only on this path,
            # so a write of 100,000 ids builds no 100,000 argument names.
            for index, user in enumerate(users):
                self._user_id(user, f"users[{index}]")
            raise

    # Groups of a flag -----------------------------------------------------------------------

    def activate_group(self, name: FlagName, group: FlagName) -> None:
        self._write(
            {flag_name(name): {GROUP + member_name(group, "group"): True}}, "activate_group"
        )

    def deactivate_group(self, name: FlagName, group: FlagName) -> None:
        self._remove(
            {flag_name(name): {GROUP + member_name(group, "group"): False}}, "deactivate_group"
        )

    # Percentages ----------------------------------------------------------------------------

    def activate_percentage(
        self, name: FlagName, percentage: float = _UNSET, *, pct: float = _UNSET
    ) -> None:
        """On for ``percentage`` percent of users, the same users every time (Ruby rollout
        buckets). ``pct=`` is the deprecated spelling of ``percentage=``."""
        value = _percentage_argument(percentage, pct, "activate_percentage")
        self._write({flag_name(name): {PERCENTAGE: value}}, "activate_percentage")

    def deactivate_percentage(self, name: FlagName) -> None:
        self._remove({flag_name(name): {PERCENTAGE: 0.0}}, "deactivate_percentage")

    def activate_percentage_of_time(
        self, name: FlagName, percentage: float = _UNSET, *, pct: float = _UNSET
    ) -> None:
        """On for ``percentage`` percent of checks, drawn at random on every check. ``pct=`` is
        the deprecated spelling of ``percentage=``."""
        value = _percentage_argument(percentage, pct, "activate_percentage_of_time")
        self._write({flag_name(name): {TIME: value}}, "activate_percentage_of_time")

    def deactivate_percentage_of_time(self, name: FlagName) -> None:
        self._remove({flag_name(name): {TIME: 0.0}}, "deactivate_percentage_of_time")

    # Data -----------------------------------------------------------------------------------

    def set_feature_data(self, name: FlagName, data: Mapping[str, Any]) -> None:
        """Merge keys into the flag's data (JSON values); other keys stay."""
        values = data_mapping(data)
        self._write(
            {flag_name(name): {DATA + key: value for key, value in values.items()}},
            "set_feature_data",
        )

    def replace_feature_data(self, name: FlagName, data: Mapping[str, Any]) -> None:
        """Make the flag's data exactly ``data``, in one write (keys not given are removed)."""
        values = data_mapping(data)
        changes: dict[str, Any] = {DATA_RESET: None}
        changes.update({DATA + key: value for key, value in values.items()})
        # The new keys share the watermark's timestamp, and a watermark hides only what is older.
        self._write({flag_name(name): changes}, "replace_feature_data")

    def clear_feature_data(self, name: FlagName) -> None:
        self._remove({flag_name(name): {DATA_RESET: None}}, "clear_feature_data")

    # Replication ----------------------------------------------------------------------------

    def export(self) -> bytes:
        """The full replicated state with timestamps (versioned format, for ``merge()``)."""
        return self._replica.export()

    def merge(self, data: bytes) -> Changed:
        """Apply another replica's ``export()`` or delta; return the flags whose state changed.

        Registers stamped further in the future than ``max_offset`` are refused and held in the
        quarantine (:meth:`quarantined`), leaving this replica and its clock unchanged. Raises
        :class:`~rollout.errors.FormatError` for a corrupt or unknown blob, changing nothing.
        """
        return self._pipeline.merge(decode(data), save=True, origin="merge")

    def refresh(self) -> Changed:
        """Load the store again and merge what other processes wrote to it since.

        For processes that share one SQLite file without a sync transport: a web worker can
        call it every few seconds, or after the CLI changed a flag. The quarantine is read
        again too. Returns the changed flags. Nothing is read when the store says nobody else
        wrote since (SQLite knows; this process's own writes are in the replica already), so
        calling it often is cheap; ``stats()["store_reloads"]`` counts the reads.
        """
        if self._store is None or not self._store.changed_elsewhere():
            return set()
        self._pipeline.counters["store_reloads"] += 1
        self._pipeline.quarantine.reload()  # what other processes held or resolved since
        return self._pipeline.merge(self._store.load(), save=False, origin="store")

    def ping_store(self) -> None:
        """Reach the store now (one cheap round trip; nothing without a store). Raises
        ``StoreUnavailableError`` (or ``StoreError``) when it cannot be reached or would refuse
        writes (a SQLite file deleted under the process) or its last load failed (a damaged
        row), ``ClosedError`` once closed. What ``rollout serve``'s ``/readyz`` asks."""
        if self._store is not None:
            self._store.ping()

    def wait_synced(self, timeout: float = 5.0, *, peers: int | None = None) -> bool:
        """Wait until every known peer (or at least ``peers`` of them) has every local write.

        True at once without a transport. False if ``timeout`` seconds pass first, and False at
        once when a peer refused registers the wait covers (stamped too far ahead of its clock:
        they sit in its quarantine and will not get there by waiting).
        """
        if self._transport is None:
            return True
        return self._transport.wait_synced(timeout, peers)

    # Quarantine -----------------------------------------------------------------------------

    def quarantined(self, name: FlagName | None = None) -> list[QuarantinedRegister]:
        """Registers refused as stamped more than ``max_offset`` ahead (of one flag), by flag.

        Each says where it came from (``peer``, ``store``, ``merge``, ``own clock``), which node
        stamped it, and how far ahead it was. They are never applied on their own, however much
        later they are offered again: resolve them with :meth:`accept_quarantined` or
        :meth:`drop_quarantined` (docs/operations.md, "Quarantine").
        """
        # A flag, or the named rules' entity (keys.RULES_ENTITY): its registers are held too.
        flag = entity_name(name, "name") if name is not None else None
        return self._pipeline.quarantine.entries(flag)

    def accept_quarantined(self, name: FlagName, key: str | None = None) -> int:
        """Write the held values of a flag (only register ``key``, e.g. ``"user:42"``) again as
        a fresh local write, stamped now and recorded in history (action ``quarantine_accept``,
        with ``with_context``'s actor and reason). Returns how many registers were accepted;
        ``ValueError`` when none is held."""
        return self._pipeline.resolve(*_quarantine_args(name, key), accept=True)

    def drop_quarantined(self, name: FlagName, key: str | None = None) -> int:
        """Forget the held registers of a flag (only ``key``), from the quarantine and the store;
        recorded in history (action ``quarantine_drop``). Returns how many; ``ValueError`` when
        none is held."""
        return self._pipeline.resolve(*_quarantine_args(name, key), accept=False)

    def members(self) -> list[dict[str, Any]]:
        """The nodes this one knows: address, node id, state, clock offset, last sync."""
        return self._transport.members() if self._transport is not None else []

    # History --------------------------------------------------------------------------------

    def _event(
        self,
        name: str,
        values: Mapping[str, Any],
        action: str,
        actor: str | None,
        reason: str | None,
    ) -> dict[str, Any] | None:
        """A write's history event (the pipeline stamps and stores it with the change); None
        for a write that changes nothing visible (a user added who was listed already)."""
        before, after = self._replica.describe(name, values)
        if not before and not after and action not in _ALWAYS_RECORDED:
            return None
        event: dict[str, Any] = {
            "action": action,
            "before": before,
            "after": after,
            "node": self.node_name,
        }
        if actor is not None:
            event["actor"] = actor
        if reason is not None:
            event["reason"] = reason
        return event

    def history(self, name: FlagName, limit: int | None = None) -> list[HistoryEvent]:
        """The flag's recorded changes, newest first (kept after a delete too).

        At most ``history_limit`` events (default 100) are kept per flag, in the store and in
        every replica.
        """
        flag = _validate.flag_name(name)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        events = self._replica.events(flag)
        if limit is not None:
            events = events[:limit]
        from .._core.history_event import HistoryEvent  # here: a dataclass (see lazy.py)

        return [HistoryEvent.from_register(flag, r.ts, r.value) for _, r in events]

    def with_context(
        self, *, user: str | None = None, reason: str | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Attribute the writes made inside the ``with`` block (this thread or task) in history.

        ``with flags.with_context(user="alice"): flags.activate("chat")`` records alice as the
        actor; ``reason`` is a free-text why. Blocks nest; the inner one wins.
        """
        return write_context(user, reason)

    # Local controls: degrade and override ---------------------------------------------------

    def degrade(
        self,
        name: FlagName,
        *,
        threshold: float = 0.1,
        minimum: int = 100,
        window: float = 60.0,
        failures: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        on_degrade: OnDegrade | list[OnDegrade] | tuple[OnDegrade, ...] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Degrade:
        """Count the feature's calls and switch the flag off when too many fail.

        ``with flags.degrade("recs"): call_recs()`` (also ``async with``, or as a decorator)
        counts calls and failures (exceptions in ``failures``, re-raised) in a sliding
        ``window`` of seconds in this process. Once at least ``minimum`` calls were seen and the
        failed share reaches ``threshold``, the flag is deactivated once (replicated like any
        write; history action ``degraded``), ``on_degrade(flag, reason)`` callbacks run, and it
        stays off until someone turns it on again. Made for the call site: the same name and
        arguments give the same tracker; other arguments for that name raise ``ValueError``.
        ``clock``: monotonic milliseconds, for tests (``rollout.testing.FakeClock``).
        """
        args = (threshold, minimum, window, failures, on_degrade, clock)
        try:
            known = self._degrades.last.get(name)
        except TypeError:  # an unhashable name: make() says what is wrong with it
            known = None
        if known is not None and known[0] == args:
            return known[1]
        return self._degrades.make(name, args)

    def override(self, name: FlagName, value: bool) -> Override:
        """Force the flag's answer in this process while a ``with`` block or decorated call runs.

        For tests of code that uses a module-level Rollout: ``active``, ``inactive``,
        ``feature_states`` and ``active_features`` answer ``value`` (for every user). Nothing is
        written, stored, replicated or recorded; overrides nest and restore on exit.
        """
        if not isinstance(value, bool):
            raise TypeError(f"value must be a bool, got {value!r}")
        return Override(self._overrides, _validate.flag_name(name), value)

    @property
    def overrides(self) -> Mapping[str, bool]:
        """What ``override()`` forces right now, name -> answer (a live, read-only view)."""
        return self._overrides.values

    # Subscriptions --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(changed_names)`` after every local write or merge that changes flags.

        Returns a function that unsubscribes. Callbacks run on the thread that made the change,
        holding no lock; an exception in one is logged and does not reach the writer.
        """
        return self._pipeline.subscribe(callback)

    def subscribe_rules(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(changed_rule_names)`` after every local write or merge that changes
        named rules (:meth:`define_rule`, :meth:`remove_rule`, :meth:`load_flagd`): defined,
        edited or removed, and rules whose meaning changed through one they refer to.

        A separate subscription because rule names are not flag names: :meth:`subscribe` is
        told only of flags (among them those whose answers a rule change changed). Returns a
        function that unsubscribes; callbacks run as :meth:`subscribe`'s do.
        """
        return self._pipeline.subscribe(callback, rules=True)

    # Lifecycle ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters a person would want to see: writes, merges, rejections, errors, sync."""
        return {
            "node": f"{self._pipeline.clock.node:016x}",
            # A Store of one's own may name itself by a URL with a password in it.
            "store": _redacted(self._store.url) if self._store is not None else "memory",
            "flags": len(self._checks),
            "closed": self._pipeline.closed,
            # Why local writes are refused now (the peers doubt this clock), None when not.
            "clock_problem": self._pipeline.clock_problem(),
            **self._pipeline.counters,
            "quarantined": self._pipeline.quarantine.count(),
            "quarantine_overflow": self._pipeline.quarantine.overflow,
            "quarantine_distrusted_nodes": self._pipeline.quarantine.distrusted_nodes,
            "deferred": self._pipeline.deferred,
            "uncommitted": len(self._pipeline.uncommitted),
            "sync": self._transport.stats() if self._transport is not None else None,
            "ruby": dict(self._ruby.stats) if self._ruby is not None else None,
        }

    def close(self, timeout: float = 5.0) -> None:
        """Leave the cluster and release the store (if opened from a URL).

        Idempotent, and returns within about ``timeout`` seconds. Checks keep answering.
        """
        if self._pipeline.closed:
            return
        self._pipeline.closed = True
        if self._ruby is not None:
            self._ruby.close(timeout)
        if self._transport is not None:
            self._transport.close(timeout)
        try:
            # Peers' registers applied but not stored after a failed commit: a last try (they
            # hold them, and the digest exchange at the next start brings back what fails).
            self._pipeline.commit_uncommitted()
        except RolloutError as exc:
            logger().warning("closing with peers' changes not stored (peers hold them): %s", exc)
        self._close_store(timeout)

    def _close_store(self, timeout: float) -> None:
        """Close the store if this Rollout opened it (from a URL), within about ``timeout``."""
        if self._store is not None and self._owns_store:
            close_within = getattr(self._store, "close_within", None)  # a Store subclass's
            if close_within is not None:
                close_within(timeout)
            else:
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
        pipeline = getattr(self, "_pipeline", None)
        if transport is not None and pipeline is not None and not pipeline.closed:
            # Never raise from a finaliser (try, not contextlib.suppress: contextlib is not loaded).
            try:  # noqa: SIM105
                transport.close(1.0)
            except Exception:
                pass

    def __repr__(self) -> str:
        store = _redacted(self._store.url) if self._store is not None else "memory"
        return f"<Rollout store={store!r} flags={len(self._checks)}>"


def _redacted(url: str) -> str:
    # Imported here: redaction compiles its patterns on import, and only stats() and repr()
    # show a store's URL.
    from .._core.redact import redact_url

    return redact_url(url)


def _percentage_argument(value: float, pct: float, method: str) -> float:
    """The checked percentage of ``activate_percentage(_of_time)``, also from the old ``pct=``."""
    if pct is not _UNSET:
        if value is not _UNSET:
            raise TypeError(f"{method}() got both percentage and pct (pct is its old name)")
        import warnings  # here: only the deprecated spelling needs it

        warnings.warn(
            f"{method}(pct=...) is deprecated: the argument is named percentage",
            DeprecationWarning,
            stacklevel=3,
        )
        value = pct
    if value is _UNSET:
        raise TypeError(f"{method}() missing 1 required argument: 'percentage'")
    return percentage(value, "percentage")


def _quarantine_args(name: FlagName, key: str | None) -> tuple[str, str | None]:
    if key is not None and (not isinstance(key, str) or not key):
        raise ValueError(f"key must be a register key such as 'user:42' or None, got {key!r}")
    return entity_name(name, "name"), key
