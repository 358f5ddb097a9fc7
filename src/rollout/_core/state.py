"""The replicated state of one flag: a map of last-writer-wins registers
(docs/architecture.md; one register and the rule that merges two: rollout._core.register).

A register is ``(timestamp, value)`` under a key such as ``percentage`` or ``user:42``. Merging
keeps, per key, the register with the larger timestamp, which makes merge commutative,
associative and idempotent: deltas may arrive late, twice, or out of order.

The keys and which watermark hides which are in :mod:`rollout._core.keys`. Two watermark
registers hide older registers without naming them one by one:

* ``reset`` (written by ``deactivate`` and ``delete``) hides targeting registers older than it;
* ``data_reset`` (written by ``clear_feature_data``, ``replace_feature_data`` and ``delete``)
  hides data registers older than it;
* ``definition_reset`` (written by ``define_flag``, which replaces a whole definition, and
  ``delete``) hides definition registers (variants, default variant, targeting rule, state)
  older than it.

Hidden registers can never become visible again (watermarks only move forward), so they are
dropped: activate/deactivate cycles do not grow memory.

History events (``history:<timestamp>``, see rollout._core.history) are registers too, never
hidden, bounded to the newest ``history_limit`` per flag. They are held in a dict of their own:
each write adds one and drops the oldest, and in the dict of a flag's million users each of those
lookups would be a cache miss.

:class:`FlagState` also keeps the *visible* view (users, groups, data, ...) up to date
incrementally, so adding one user to a flag that lists 100,000 costs the same as adding one to an
empty flag.
"""

from __future__ import annotations

import bisect
from itertools import chain

from .clock import MIN_TIMESTAMP, Timestamp
from .history import DEFAULT_HISTORY_LIMIT
from .keys import (
    DATA,
    DATA_RESET,
    DEFAULT_VARIANT,
    DEFINITION_RESET,
    DISABLED,
    EXCLUDE,
    EXISTS,
    GROUP,
    HISTORY,
    PERCENTAGE,
    RESET,
    RULE,
    TARGETING_RULE,
    TIME,
    USER,
    VARIANT,
    is_history,
    split_key,
)
from .lazy import LazyModule
from .register import Delta, Register, is_hidden, stamped, tiebreak, wins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from . import listed_names as _listed_names
else:
    _listed_names = LazyModule("rollout._core.listed_names")  # by the first flag's view

# Delta, Register and the rule's functions are rollout._core.register's, named here too for the
# many modules that import them with FlagState.
__all__ = [
    "Delta",
    "FlagState",
    "Register",
    "is_hidden",
    "stamped",
    "wins",
]


#: The keys whose visible change is a member of a set a compiled check shares (FlagState.recompile).
_IN_PLACE = (USER, EXCLUDE)

_WATERMARK_ATTRIBUTES = (
    (RESET, "reset"),
    (DATA_RESET, "data_reset"),
    (DEFINITION_RESET, "definition_reset"),
)
_NO_WATERMARKS = (MIN_TIMESTAMP, MIN_TIMESTAMP, MIN_TIMESTAMP)


class FlagState:
    """All registers of one flag and the visible view derived from them."""

    __slots__ = (
        "data",
        "data_reset",
        "default_variant",
        "definition_reset",
        "disabled",
        "event_registers",
        "excluded",
        "exists",
        "groups",
        "history",
        "history_limit",
        "percentage",
        "recompile",
        "registers",
        "reset",
        "rules",
        "targeting",
        "time_percentage",
        "users",
        "variants",
    )

    def __init__(self, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        #: Every register held but the history events.
        self.registers: dict[str, Register] = {}
        #: The history events held (see the module's docstring).
        self.event_registers: dict[str, Register] = {}
        #: The keys of the history events held, oldest first (their keys sort as timestamps).
        self.history: list[str] = []
        self.history_limit = history_limit
        self.reset = MIN_TIMESTAMP
        self.data_reset = MIN_TIMESTAMP
        self.exists = False
        self.percentage = 0.0
        self.time_percentage = 0.0
        # Evaluation reads these sets without a lock while a writer updates them in place; each
        # add/discard is atomic, and a check looks at one id, so it sees it before or after.
        self.users: set[str] = set()
        self.excluded: set[str] = set()
        self.groups: set[str] = set()
        self.data: dict[str, Any] = {}
        self.definition_reset = MIN_TIMESTAMP
        # The definition (flagd's model): a flag has one when it has a variant.
        self.variants: dict[str, Any] = {}
        self.default_variant: str | None = None
        self.targeting: Any = None
        self.disabled = False
        #: The named rules (only the rules entity, keys.RULES_ENTITY, holds any).
        self.rules: dict[str, Any] = {}
        #: Whether the flag's compiled check must be built again after the last merge that
        #: changed the view. False when it only added or removed listed or excluded users in
        #: the sets the check holds (shared, updated in place), neither set becoming empty or
        #: no longer empty: the check is then already right (rollout._client.replica).
        self.recompile = True

    def hidden(self, key: str, ts: Timestamp) -> bool:
        return is_hidden(key, ts, self.reset, self.data_reset, self.definition_reset)

    def merge(self, incoming: Mapping[str, Register]) -> bool:
        """Merge registers into this flag. Returns whether the visible state changed."""
        registers = self.registers
        self.recompile = True
        if not registers and not self.event_registers:
            return self._merge_into_empty(incoming)
        accepted: list[tuple[str, Register]] = []
        watermark_moved = False
        for key, register in incoming.items():
            if is_history(key):
                self._add_event(key, register)
                continue
            if self.hidden(key, register.ts) or not wins(register, registers.get(key)):
                continue
            if key == RESET and register.ts > self.reset:
                self.reset = register.ts
                watermark_moved = True
            elif key == DATA_RESET and register.ts > self.data_reset:
                self.data_reset = register.ts
                watermark_moved = True
            elif key == DEFINITION_RESET and register.ts > self.definition_reset:
                self.definition_reset = register.ts
                watermark_moved = True
            accepted.append((key, register))
        if not accepted:
            return False
        for key, register in accepted:
            registers[key] = register
        if watermark_moved:
            before = self._view()
            self._drop_hidden()
            self._rebuild_view()
            return self._view() != before
        # No watermark moved, so what was accepted (not hidden when it was) is visible.
        changed = False
        in_place = True  # only members of the users and excluded sets changed
        emptiness = (not self.users, not self.excluded)
        for key, register in accepted:
            if self._apply_visible(key, register.value):
                changed = True
                in_place = in_place and key.startswith(_IN_PLACE)
        self.recompile = not in_place or emptiness != (not self.users, not self.excluded)
        return changed

    def _merge_into_empty(self, incoming: Mapping[str, Register]) -> bool:
        """:meth:`merge` into a flag holding nothing (a store loaded, an export merged): every
        register wins, so they are taken whole and the view built once, without weighing a
        million users one by one against registers that are not there."""
        before = self._view()
        registers = self.registers = dict(incoming)  # empty before: nothing to keep
        # The keys that are no user (few, on a big flag), read once: the events are among them.
        others = _listed_names.other_keys(registers, USER)
        events = [key for key in others if key.startswith(HISTORY)]
        if events:
            events.sort()
            self.history = events[max(0, len(events) - self.history_limit) :]
            self.event_registers = {key: registers[key] for key in self.history}
            for key in events:
                del registers[key]
        for watermark, attribute in _WATERMARK_ATTRIBUTES:
            held = registers.get(watermark)
            if held is not None:
                setattr(self, attribute, held.ts)
        if (self.reset, self.data_reset, self.definition_reset) != _NO_WATERMARKS:
            self._drop_hidden()
        self._rebuild_view([key for key in others if key in registers])
        return self._view() != before

    def _add_event(self, key: str, register: Register) -> None:
        """Keep the newest ``history_limit`` events: the union of two histories, cut to size."""
        held = self.event_registers
        if key in held:
            return  # one key, one timestamp, one write: already held
        history = self.history
        if len(history) >= self.history_limit and (not history or key < history[0]):
            return  # older than every event kept: it would be dropped at once
        bisect.insort(history, key)
        held[key] = register
        while len(history) > self.history_limit:
            del held[history.pop(0)]

    def remove_after(self, wall: int) -> dict[str, Register]:
        """Remove and return every register stamped after ``wall`` (a clock that stepped back:
        rollout._client.quarantine). Watermarks fall back to what remains; registers they hid
        earlier are gone already and come back from peers by anti-entropy."""
        removed = {k: r for k, r in self.registers.items() if r.ts.wall > wall}
        removed_events = {k: r for k, r in self.event_registers.items() if r.ts.wall > wall}
        if not removed and not removed_events:
            return removed
        for key in removed:
            del self.registers[key]
        for key in removed_events:
            del self.event_registers[key]
        self.history = [key for key in self.history if key not in removed_events]
        removed.update(removed_events)
        self.reset = self.registers[RESET].ts if RESET in self.registers else MIN_TIMESTAMP
        data_reset = self.registers.get(DATA_RESET)
        self.data_reset = data_reset.ts if data_reset is not None else MIN_TIMESTAMP
        definition_reset = self.registers.get(DEFINITION_RESET)
        self.definition_reset = (
            definition_reset.ts if definition_reset is not None else MIN_TIMESTAMP
        )
        self._rebuild_view()
        return removed

    def events(self) -> list[tuple[str, Register]]:
        """The history events held, newest first."""
        return [(key, self.event_registers[key]) for key in reversed(self.history)]

    def register_values(self) -> Iterable[Register]:
        """Every register held, the history events included."""
        return chain(self.registers.values(), self.event_registers.values())

    def set_defaults(self, defaults: Mapping[str, Register]) -> None:
        """Put registers declared in code (at MIN_TIMESTAMP) under every key no real write holds.

        Unlike :meth:`merge`, a later declaration replaces an earlier one in this process.
        """
        for key, register in defaults.items():
            current = self.registers.get(key)
            if current is None or current.ts == MIN_TIMESTAMP:
                self.registers[key] = register
        self._drop_hidden()
        self._rebuild_view()

    def _view(self) -> tuple[Any, ...]:
        return (
            self.exists,
            self.percentage,
            self.time_percentage,
            self.users,
            self.excluded,
            self.groups,
            self.data,
            self.variants,
            self.default_variant,
            self.targeting,
            self.disabled,
            self.rules,
        )

    def _drop_hidden(self) -> None:
        registers = self.registers
        for key in [k for k, r in registers.items() if self.hidden(k, r.ts)]:
            del registers[key]

    def _rebuild_view(self, others: list[str] | None = None) -> None:
        """Build the view again from the registers; ``others``: their keys that are no user,
        when the caller has them already."""
        # Fresh containers: a reader holding the old ones keeps a consistent (old) view.
        self.users, self.excluded, self.groups, self.data = set(), set(), set(), {}
        self.variants, self.rules = {}, {}
        self.default_variant = self.targeting = None
        self.exists = self.disabled = False
        self.percentage = self.time_percentage = 0.0
        # Listed users are most of a big flag: gathered at once (each key is held once, so
        # taking the present ones is what _apply_visible would do; in C in a big flag, see
        # listed_names), the rest one by one.
        registers = self.registers
        if others is None:
            others = _listed_names.other_keys(registers, USER)
        self.users = _listed_names.present_names(registers, USER, others)
        for key in others:
            self._apply_visible(key, registers[key].value)

    def _apply_visible(self, key: str, value: Any) -> bool:
        """Fold one visible register into the view. Returns whether the view changed."""
        split = split_key(key)
        if split is not None:
            prefix, name = split
            if prefix == USER:
                return _set_member(self.users, name, value)
            if prefix == EXCLUDE:
                return _set_member(self.excluded, name, value)
            if prefix == GROUP:
                return _set_member(self.groups, name, value)
            if prefix == DATA:
                return _set_value(self.data, name, value, keep_none=True)
            if prefix == VARIANT:
                return _set_value(self.variants, name, value, keep_none=False)
            if prefix == RULE:
                return _set_value(self.rules, name, value, keep_none=False)
            return False  # a history event: not part of the view
        if key == EXISTS:
            changed = bool(self.exists != value)
            self.exists = bool(value)
            return changed
        if key == PERCENTAGE:
            changed = bool(self.percentage != value)
            self.percentage = float(value)
            return changed
        if key == TIME:
            changed = bool(self.time_percentage != value)
            self.time_percentage = float(value)
            return changed
        if key in _DEFINITION_ATTRIBUTES:
            attribute = _DEFINITION_ATTRIBUTES[key]
            was = getattr(self, attribute)
            setattr(self, attribute, bool(value) if key == DISABLED else value)
            return not _same_json(was, getattr(self, attribute))
        return False  # the watermarks carry no visible value of their own

    def replicated_registers(self) -> Iterable[tuple[str, Register]]:
        """The registers other replicas should have: all but the local defaults.

        Hidden registers are already dropped, so these are exactly the visible ones, and the
        history events.
        """
        held = chain(self.registers.items(), self.event_registers.items())
        return ((k, r) for k, r in held if r.ts != MIN_TIMESTAMP)


_DEFINITION_ATTRIBUTES = {
    DEFAULT_VARIANT: "default_variant",
    TARGETING_RULE: "targeting",
    DISABLED: "disabled",
}


def _same_json(was: Any, now: Any) -> bool:
    # Not == alone: 1 == 1.0 == True in Python, and those are three different JSON values.
    return type(was) is type(now) and tiebreak(was) == tiebreak(now)


def _set_value(values: dict[str, Any], name: str, value: Any, *, keep_none: bool) -> bool:
    """Set a JSON member of the view; None removes it unless ``keep_none`` (data keeps a null).
    Returns whether the view changed."""
    if value is None and not keep_none:
        return values.pop(name, _MISSING) is not _MISSING
    if name in values and _same_json(values[name], value):
        return False
    values[name] = value
    return True


_MISSING: Any = object()


def _set_member(members: set[str], member: str, present: Any) -> bool:
    if present:
        if member in members:
            return False
        members.add(member)
        return True
    if member not in members:
        return False
    members.discard(member)
    return True
