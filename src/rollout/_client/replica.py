"""This process's replica of every flag: merges deltas, compiles checks, computes digests.

Writers hold the replica's lock; readers (``Rollout.active``) never take it. They read two plain
dicts, ``checks`` and ``anonymous``, whose entries are replaced whole, so a reader sees a flag
either before or after a change.
"""

from __future__ import annotations

import operator
import threading
from collections import ChainMap

from .._core import targeting as _engine  # loaded with the first definition compiled
from .._core.bucketing import Randomize
from .._core.clock import MIN_TIMESTAMP, Timestamp
from .._core.codec import encode
from .._core.context import evaluation_context
from .._core.defined import (
    ContextOf,
    DefinedCheck,
    definition_of,
    rule_group,
    rule_predicate,
    users_of_rules,
)
from .._core.feature import Check, Feature
from .._core.history import DEFAULT_HISTORY_LIMIT, describe_change
from .._core.keys import RULES_ENTITY
from .._core.lazy import LazyModule
from .._core.specialize import inline_bound
from .._core.state import Delta, FlagState, Register
from .._core.targeting import JSON
from ..errors import UnknownFlagError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TypeVar

    from .._core.targeting import CompiledFlag, FlagDefinition

    T = TypeVar("T")
else:
    json = LazyModule("json")  # loaded by the first data value checked or encoded (lazy.py)

__all__ = ["Replica"]

_TS = operator.attrgetter("ts")


class Replica:
    def __init__(
        self,
        randomize: Randomize,
        groups: Mapping[str, Callable[[Any], object]],
        specialize: Callable[[Check], Callable[[Any], bool]],
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        *,
        context_of: ContextOf | None = None,
        on_rule_error: Callable[[], object] = lambda: None,
        inline_percentages: bool = False,
    ) -> None:
        self._history_limit = history_limit
        self._randomize: Randomize = randomize
        #: What a rule reads for a user (rollout._core.context): a mapping, an id, an object.
        self.context_of: ContextOf = context_of or (lambda user: evaluation_context(user, str))
        #: Called for each evaluation of a rule that fails during a check (to be counted).
        self.on_rule_error = on_rule_error
        #: Named rules: name -> JsonLogic (the rules entity's view), and each compiled as a
        #: group's predicate over a user. Replaced whole on a change, like ``checks``.
        self.rules: dict[str, JSON] = {}
        self.rule_groups: dict[str, Callable[[Any], object]] = {}
        #: A group's predicate: the one defined in code, else the named rule of that name.
        self.group_predicates: Mapping[str, Callable[[Any], object]] = ChainMap(
            groups,  # type: ignore[arg-type]  # read only: ChainMap wants MutableMappings
            self.rule_groups,
        )
        self._groups = self.group_predicates
        #: Builds a check's function for a user (rollout._core.specialize, bound to the Rollout).
        self._specialize = specialize
        #: Whether ``flags.active`` checks a bare percentage flag itself (``percentage_bounds``):
        #: only where it can read the id with ``getattr`` (rollout._core.evaluate).
        self._inline_percentages = inline_percentages
        self.lock = threading.RLock()
        self._flags: dict[str, FlagState] = {}
        #: flag name -> compiled check, for every flag that exists.
        self.checks: dict[str, Check] = {}
        #: flag name -> the answer without a user, for flags where it does not depend on chance.
        self.anonymous: dict[str, bool] = {}
        #: flag name -> its check for a user (``checks[name].for_user``), read by the hot path
        #: without the attribute lookup.
        self.user_checks: dict[str, Callable[[Any], bool]] = {}
        #: flag name -> its bound, for the flags not in ``user_checks`` that are only a
        #: percentage of users (rollout._core.specialize.inline_bound); the hot path checks them.
        #: An entry under a name that is also in ``user_checks`` is stale and never read.
        self.percentage_bounds: dict[str, int] = {}
        #: flag name -> its compiled definition, for every existing flag that has one.
        self.definitions: dict[str, CompiledFlag] = {}
        self._snapshots: dict[str, Feature] = {}
        self._digests: dict[str, bytes] = {}
        #: Named rules changed since :meth:`take_changed_rules` last took them.
        self._changed_rules: set[str] = set()

    def apply(self, delta: Delta) -> set[str]:
        """Merge a delta. Returns the names of flags whose visible state changed."""
        changed: set[str] = set()
        with self.lock:
            for name, registers in delta.items():
                state = self._flags.get(name)
                if state is None:
                    state = self._flags[name] = FlagState(self._history_limit)
                if state.merge(registers):
                    if name == RULES_ENTITY:
                        changed |= self._rules_changed(state)
                    else:
                        changed.add(name)
                        if state.recompile or not self._shares_sets(name, state):
                            self._compile(name, state)
                        else:  # users listed or excluded, in the sets its check shares
                            self._snapshots.pop(name, None)
                self._digests.pop(name, None)
        return changed

    def _shares_sets(self, name: str, state: FlagState) -> bool:
        """Whether the flag's compiled check holds the very sets of listed and excluded users
        the state updates in place (a merge that moved a watermark builds new ones): then a
        change of their members alone needs no new check (FlagState.recompile)."""
        check = self.checks.get(name)
        return (
            check is not None
            and not state.variants
            and check.users is state.users
            and check.excluded is state.excluded
        )

    def _rules_changed(self, state: FlagState) -> set[str]:
        """Compile the named rules that changed, then the flags that use them: those whose
        targeting refers to one (``$ref``) and those with a group of that name. Returns the
        names of those flags (their answers may have changed)."""
        old, new = self.rules, dict(state.rules)
        changed = {
            n for n in old.keys() | new.keys() if _canonical(old.get(n)) != _canonical(new.get(n))
        }
        changed |= users_of_rules(changed, new.items(), new)  # rules through their $refs
        self.rules = new
        self._changed_rules |= changed
        for name in changed:  # entry by entry: a reader (explain) never sees the map emptied
            if name in new:
                predicate = rule_predicate(new[name], new, self.on_rule_error)
                self.rule_groups[name] = rule_group(predicate, self.context_of)
            else:
                self.rule_groups.pop(name, None)
        uses = [(n, s.targeting) for n, s in self._flags.items() if n in self.definitions]
        flags = users_of_rules(changed, uses, new)
        flags |= {n for n, s in self._flags.items() if s.exists and s.groups & changed}
        for name in flags:
            self._compile(name, self._flags[name])
        return flags

    def take_changed_rules(self) -> set[str]:
        """The named rules changed (defined, edited, removed, or changed through a rule they
        refer to) since the last call, for the rules' subscribers. Called right after
        :meth:`apply` or :meth:`remove_after`, under the lock that orders changes (the write
        pipeline's), so that each change is told once and with the change that made it."""
        with self.lock:
            taken, self._changed_rules = self._changed_rules, set()
            return taken

    def remove_after(self, wall: int) -> tuple[Delta, set[str]]:
        """Remove every register stamped after ``wall``: ``(what was removed, flags changed)``."""
        removed: Delta = {}
        changed: set[str] = set()
        with self.lock:
            for name, state in self._flags.items():
                if all(r.ts.wall <= wall for r in state.register_values()):
                    continue
                before = Feature.from_state(name, state) if state.exists else None
                taken = state.remove_after(wall)
                removed[name] = taken
                self._digests.pop(name, None)
                if name == RULES_ENTITY:
                    changed |= self._rules_changed(state)
                    continue
                self._compile(name, state)
                after = Feature.from_state(name, state) if state.exists else None
                if before != after:
                    changed.add(name)
        return removed, changed

    def set_defaults(self, name: str, registers: Mapping[str, Register]) -> None:
        with self.lock:
            state = self._flags.get(name)
            if state is None:
                state = self._flags[name] = FlagState(self._history_limit)
            state.set_defaults(registers)
            self._compile(name, state)

    def _compile(self, name: str, state: FlagState) -> None:
        self._snapshots.pop(name, None)
        if not state.exists:
            self.checks.pop(name, None)
            # The bound first: one left behind an entry of user_checks must not show through.
            self.percentage_bounds.pop(name, None)
            self.user_checks.pop(name, None)
            self.anonymous.pop(name, None)
            self.definitions.pop(name, None)
            return
        bound = None
        if state.variants:
            compiled = _engine.compile_flag(definition_of(state), self.rules)
            self.definitions[name] = compiled
            check: Check = DefinedCheck(
                name,
                state,
                self._randomize,
                compiled=compiled,
                context_of=self.context_of,
                on_error=self.on_rule_error,
            )
        else:
            self.definitions.pop(name, None)
            check = Check(name, state, self._randomize, self._groups)
            check.for_user = self._specialize(check)
            if self._inline_percentages:
                bound = inline_bound(check)
        # Readers look a flag up in one dict or another, never both for one answer: the order
        # of these assignments leaves no answer half-changed.
        self.checks[name] = check
        # A reader looks in percentage_bounds only when user_checks has no entry, so a flag
        # that becomes more than a percentage leaves its old bound there, hidden: removing it
        # would let a check that missed user_checks just before the write miss both dicts and
        # answer as for an unknown flag. One that becomes a percentage again replaces it.
        if bound is None:
            self.user_checks[name] = check.for_user
        else:
            self.percentage_bounds[name] = bound
            self.user_checks.pop(name, None)
        if check.anonymous is None:
            self.anonymous.pop(name, None)
        else:
            self.anonymous[name] = check.anonymous

    def recompile(self) -> None:
        """Compile every flag again (after a group was defined: checks hold predicates)."""
        with self.lock:
            for name, state in self._flags.items():
                if name != RULES_ENTITY:
                    self._compile(name, state)

    # Reading --------------------------------------------------------------------------------

    def require(self, names: Iterable[str]) -> None:
        """UnknownFlagError naming the first of ``names`` that is no existing flag."""
        for name in names:
            if name not in self.checks:
                raise UnknownFlagError(name)

    def names(self) -> list[str]:
        return sorted(self.checks)

    def feature(self, name: str) -> Feature:
        """An immutable snapshot (cached until the flag changes); empty for an unknown flag."""
        snapshot = self._snapshots.get(name)
        if snapshot is not None:
            return snapshot
        with self.lock:
            state = self._flags.get(name)
            if state is None or not state.exists:
                return Feature(name)
            snapshot = self._snapshots[name] = Feature.from_state(name, state)
            return snapshot

    def render(self, name: str, render: Callable[[FlagState], T]) -> T | None:
        """``render(state)`` of an existing flag, under the lock (None when it does not exist)."""
        with self.lock:
            state = self._flags.get(name)
            return render(state) if state is not None and state.exists else None

    def describe(
        self, name: str, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(before, after)`` of a write about to be made to a flag, for its history."""
        with self.lock:
            return describe_change(self._flags.get(name), values)

    def events(self, name: str) -> list[tuple[str, Register]]:
        """The history of a flag, newest first (also after a delete)."""
        with self.lock:
            state = self._flags.get(name)
            return state.events() if state is not None else []

    def definition(self, name: str) -> FlagDefinition | None:
        """The definition of an existing flag that has one (variants), else None."""
        with self.lock:
            state = self._flags.get(name)
            if state is None or not state.exists or not state.variants:
                return None
            return definition_of(state)

    def flag_definitions(self) -> dict[str, FlagDefinition]:
        """Every existing flag's definition, for those that have one."""
        with self.lock:
            return {
                name: definition_of(state)
                for name, state in self._flags.items()
                if state.exists and state.variants
            }

    def users(self, name: str) -> frozenset[str]:
        with self.lock:
            state = self._flags.get(name)
            return frozenset(state.users) if state is not None and state.exists else frozenset()

    # Replication ----------------------------------------------------------------------------

    def delta(self, names: set[str] | None = None) -> Delta:
        """The replicated registers of the named flags (all flags when ``names`` is None)."""
        with self.lock:
            flags = self._flags
            chosen = flags if names is None else {n: flags[n] for n in names if n in flags}
            return {name: dict(state.replicated_registers()) for name, state in chosen.items()}

    def export(self) -> bytes:
        return encode(self.delta())

    def digests(self) -> dict[str, bytes]:
        """Per flag, a hash of its replicated registers: equal digests mean equal flags."""
        with self.lock:
            for name, state in self._flags.items():
                if name not in self._digests:
                    self._digests[name] = _digest(state)
            return {name: digest for name, digest in self._digests.items() if digest}

    def latest_timestamp(self) -> Timestamp:
        with self.lock:
            # Over every register, local defaults included: they are at MIN_TIMESTAMP, which
            # is the answer when nothing else is held. map() keeps a million users out of
            # Python's loop.
            return max(
                (
                    max(map(_TS, s.register_values()), default=MIN_TIMESTAMP)
                    for s in self._flags.values()
                ),
                default=MIN_TIMESTAMP,
            )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(state: FlagState) -> bytes:
    # History is included: an event of a write whose other registers lost (an older percentage)
    # shows nowhere else. So replicas must share one history_limit, or they differ forever.
    registers = sorted(state.replicated_registers())
    if not registers:
        return b""
    import hashlib  # here: it loads OpenSSL, and a replica with no flag never digests one

    hasher = hashlib.blake2b(digest_size=16)
    for key, register in registers:
        hasher.update(json.dumps([key, *register.ts, register.value], sort_keys=True).encode())
    return hasher.digest()
