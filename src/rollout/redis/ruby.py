"""The Ruby rollout gem's (2.x) Redis format, read and written byte for byte as the gem does.

A Ruby service running the gem and a Python service running this library can share one Redis
only if each reads what the other writes and, where we write, we write exactly what the gem
would: the golden file ``shared/golden/ruby-rollout-2.6.2.json`` (recorded from the real gem) is
the test. The gem keeps, per flag, one string under ``feature:<name>``::

    percentage|user,user|group,group|{"json":"data"}

and the flag names joined by ``,`` under ``feature:__features__``. This module is pure (no Redis,
no I/O): parsing and formatting records, ordering a :class:`FlagState` the way the gem orders
its arrays, and turning a record change made by Ruby into ordinary :class:`rollout.Rollout`
writes. What the Ruby format has no place for (excluded users, percentage of time) is neither
written nor read here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .._core.clock import MIN_TIMESTAMP
from .._core.keys import DATA, GROUP, USER, member_key
from .._core.state import FlagState
from .._core.validate import json_problem

__all__ = [
    "FEATURES_KEY",
    "FEATURES_NAME",
    "RubyRecord",
    "Write",
    "check_ruby_safe",
    "diff_records",
    "feature_key",
    "features_after_delete",
    "features_after_save",
    "features_key",
    "features_list",
    "flag_from_key",
    "format_record",
    "parse_features_list",
    "parse_record",
    "percentage_text",
    "record_from_state",
    "ruby_float_text",
    "ruby_json",
]

#: The gem's key for the list of flag names. A flag of this name would overwrite it.
FEATURES_NAME: Final = "__features__"
FEATURES_KEY: Final = f"feature:{FEATURES_NAME}"

#: One ordinary write: a :class:`rollout.Rollout` method name and its arguments after the flag.
Write = tuple[str, tuple[Any, ...]]

# The numbers we accept as a percentage. Ruby's String#to_f reads any prefix ("20abc" is 20.0,
# "abc" is 0.0); a record like that was not written by the gem, so it is refused instead.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Ruby's String#strip removes these (NUL included), and the gem reads a blank data field as {}.
_RUBY_BLANK: Final = " \t\n\v\f\r\0"


@dataclass(frozen=True)
class RubyRecord:
    """One flag as the gem stores it, in the gem's order.

    ``percentage_text`` is kept as it appeared because the gem writes ``20`` or ``20.0`` for the
    same percentage depending on how it got there (see :func:`percentage_text`).
    """

    percentage: float = 0.0
    percentage_text: str = "0"
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


# Keys ---------------------------------------------------------------------------------------


def _prefix(namespace: str | None) -> str:
    # The gem itself has no namespace: users wrap its Redis in redis-namespace, which puts
    # "<namespace>:" in front of every key.
    return f"{namespace}:" if namespace else ""


def feature_key(name: str, namespace: str | None = None) -> str:
    return f"{_prefix(namespace)}feature:{name}"


def features_key(namespace: str | None = None) -> str:
    return f"{_prefix(namespace)}{FEATURES_KEY}"


def flag_from_key(key: str, namespace: str | None = None) -> str | None:
    """The flag a ``feature:*`` key holds, or None for the feature list and foreign keys."""
    start = feature_key("", namespace)
    if not key.startswith(start) or key == features_key(namespace):
        return None
    return key[len(start) :] or None


# Records ------------------------------------------------------------------------------------


def _ruby_split(text: str) -> list[str]:
    """Ruby's ``text.split(",")``: empty fields are kept, except trailing ones."""
    parts = text.split(",") if text else []
    while parts and not parts[-1]:
        parts.pop()
    return parts


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (Ruby's JSON.parse refuses it)")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} does not fit a float")
    return number


def parse_record(text: str) -> RubyRecord:
    """Read a ``feature:<name>`` value the way the gem's ``Feature#initialize`` does.

    ``split('|', 4)``: the data field keeps any ``|`` of its own. Blank users/groups are none,
    a blank or missing data field is ``{}``. Stricter than the gem where the gem would silently
    read garbage: a percentage that is not a number from 0 to 100, data that is not a JSON
    object. Those raise :class:`ValueError` naming the record.
    """
    fields = text.split("|", 3) if text else []
    fields += [""] * (3 - len(fields))
    raw_percentage, raw_users, raw_groups = fields[:3]
    raw_data = fields[3] if len(fields) > 3 else ""
    if not raw_percentage:
        percentage = 0.0  # nil.to_f and "".to_f are 0.0 in the gem
    elif _NUMBER.fullmatch(raw_percentage):
        percentage = float(raw_percentage)
    else:
        raise ValueError(
            f"Ruby rollout record {text!r}: percentage {raw_percentage!r} is not a number"
        )
    if not 0.0 <= percentage <= 100.0:
        raise ValueError(
            f"Ruby rollout record {text!r}: percentage {raw_percentage!r} is not from 0 to 100"
        )
    data: Any = {}
    if raw_data.strip(_RUBY_BLANK):
        try:
            data = json.loads(raw_data, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:
            raise ValueError(
                f"Ruby rollout record {text!r:.120}: data is not JSON ({exc})"
            ) from exc
        if not isinstance(data, dict):
            raise ValueError(f"Ruby rollout record {text!r:.120}: data is not a JSON object")
        for key, value in data.items():  # as deep as our data values may nest, Unicode text
            problem = json_problem(key) or json_problem(value)
            if problem is not None:
                raise ValueError(f"Ruby rollout record {text!r:.120}: data[{key!r:.40}] {problem}")
    return RubyRecord(
        percentage=percentage,
        percentage_text=raw_percentage,
        users=tuple(_ruby_split(raw_users)),
        groups=tuple(_ruby_split(raw_groups)),
        data=data,
    )


def format_record(record: RubyRecord) -> str:
    """The gem's ``Feature#serialize``: ``"#{@percentage}|#{users}|#{groups}|#{data.to_json}"``."""
    users = ",".join(record.users)
    groups = ",".join(record.groups)
    return f"{record.percentage_text}|{users}|{groups}|{ruby_json(record.data)}"


def ruby_json(value: Any) -> str:
    """``value.to_json`` as Ruby's json library writes it: compact, UTF-8 as is, Ruby floats.

    Python's ``json.dumps`` differs only in floats (``1e+20`` where Ruby writes ``1.0e+20``),
    so strings go through it and floats through :func:`ruby_float_text`.
    """
    if isinstance(value, Mapping):
        items = (f"{ruby_json(str(key))}:{ruby_json(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(ruby_json(item) for item in value) + "]"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be written as JSON (Ruby's to_json refuses it)")
        return ruby_float_text(value)
    if value is None or isinstance(value, str | int):  # bool is an int: json gives true/false
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"data value {value!r} is not JSON")


# Percentages --------------------------------------------------------------------------------


def ruby_float_text(value: float) -> str:
    """Ruby's ``Float#to_s``: the shortest round-trip digits, like Python's ``repr``.

    Both switch to exponent form below 1e-4 and from 1e16 up, with a two-digit exponent; Ruby
    always writes a fractional part in the mantissa: ``1.0e-05`` where Python writes ``1e-05``.
    """
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    text = repr(number)
    mantissa, exponent_mark, exponent = text.partition("e")
    if exponent_mark and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def percentage_text(value: float, *, set_now: int | float | None) -> str:
    """The percentage as the gem writes it, which depends on the Ruby object it holds.

    The gem saves the object it was given when the change set the percentage (the Integer 20
    of ``activate_percentage(:chat, 20)`` is ``20``; ``activate`` is 100, ``deactivate`` 0, a
    new flag starts at 0), and otherwise the Float it parsed from Redis (``20.0``). ``set_now``
    is that argument when this change set the percentage; if another write has since won, the
    visible ``value`` is written as a Float.
    """
    if set_now is not None and (isinstance(set_now, bool) or not isinstance(set_now, int | float)):
        raise TypeError(f"set_now must be an int, a float or None, got {set_now!r}")
    if set_now is None or float(set_now) != float(value):
        return ruby_float_text(value)
    return str(set_now) if isinstance(set_now, int) else ruby_float_text(set_now)


# From our state -----------------------------------------------------------------------------


def _ordered(
    members: Iterable[str], prefix: str, state: FlagState, previous: Sequence[str]
) -> list[str]:
    present = set(members)
    kept = [m for m in dict.fromkeys(previous) if m in present]
    registers = state.registers

    def added_at(member: str) -> tuple[Any, str]:
        register = registers.get(member_key(prefix, member))
        return (register.ts if register is not None else MIN_TIMESTAMP, member)

    return kept + sorted(present.difference(kept), key=added_at)


def record_from_state(
    state: FlagState,
    *,
    set_percentage: int | float | None = None,
    previous: RubyRecord | None = None,
) -> str:
    """The gem's record for a flag's visible state: what the gem would write for it.

    The gem keeps users, groups and data keys in insertion order (Ruby arrays and hashes); our
    state keeps no order, only each register's timestamp. So members already in ``previous``
    (the record last mirrored, if known) keep their place, as they do in the gem, and the rest
    follow ordered by (register timestamp, id). Caveat: members added by one write share a
    timestamp and come out sorted by id, while the gem keeps the order of the call's argument;
    ``activate_users(:f, ["b", "a"])`` is written ``a,b`` where the gem writes ``b,a``.

    ``set_percentage`` is the percentage argument when this change set it (see
    :func:`percentage_text`): pass 0 for a flag that has no Ruby record yet and whose
    percentage this change did not set, as the gem starts a new flag at the Integer 0.
    Excluded users and the percentage of time have no place in the format and are left out; a
    deleted flag has no record at all (the gem deletes its key).
    """
    before = previous or RubyRecord()
    record = RubyRecord(
        percentage=state.percentage,
        percentage_text=percentage_text(state.percentage, set_now=set_percentage),
        users=tuple(_ordered(state.users, USER, state, before.users)),
        groups=tuple(_ordered(state.groups, GROUP, state, before.groups)),
        data={k: state.data[k] for k in _ordered(state.data, DATA, state, list(before.data))},
    )
    return format_record(record)


def check_ruby_safe(kind: str, value: str) -> None:
    """Refuse a name the Ruby format cannot hold, before anything is written.

    The gem splits users and groups on ``,`` inside fields split on ``|``, and its feature list
    on ``,``: a user id ``"a,b"`` would come back as two users. ``kind`` is ``"user id"``,
    ``"group name"`` or ``"flag name"``.
    """
    if kind in ("user id", "group name"):
        if "," in value or "|" in value:
            raise ValueError(
                f"{kind} {value!r} holds ',' or '|', which the Ruby rollout format cannot store"
            )
    elif kind == "flag name":
        if "," in value:
            raise ValueError(
                f"{kind} {value!r} holds ',', which the Ruby rollout feature list cannot store"
            )
        if value == FEATURES_NAME:
            raise ValueError(
                f"{kind} {value!r} is the key of the Ruby rollout feature list; "
                "it cannot also be a flag"
            )
    else:
        raise ValueError(f"kind must be 'user id', 'group name' or 'flag name', got {kind!r}")


# The feature list ---------------------------------------------------------------------------


def features_list(names: Iterable[str]) -> str:
    return ",".join(names)


def parse_features_list(text: str) -> list[str]:
    """The flag names in ``feature:__features__``, in order, once each, without blanks."""
    return list(dict.fromkeys(name for name in _ruby_split(text) if name))


def features_after_save(names: Iterable[str], name: str) -> list[str]:
    """The gem's list after saving a flag: ``features | [name]`` (appended if new)."""
    return list(dict.fromkeys([*names, name]))


def features_after_delete(names: Iterable[str], name: str) -> list[str]:
    """The gem's list after ``delete``: the name removed, the order of the rest kept."""
    return [n for n in names if n != name]


# From Ruby's changes ------------------------------------------------------------------------


def _members(values: Iterable[str]) -> dict[str, None]:
    # Our ids are never empty; a blank between commas is only ever a hand-edited record.
    return dict.fromkeys(v for v in values if v)


def _same_json(a: Any, b: Any) -> bool:
    # Not ==: in Python 1 == 1.0 == True, and those are three different JSON values.
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    return canonical(a) == canonical(b)


def diff_records(old: RubyRecord | None, new: RubyRecord | None) -> list[Write]:
    """The ordinary writes that turn ``old`` (the record last mirrored) into ``new``.

    Only what differs is written, one register per change, so a concurrent Python write to
    anything else survives. For that reason a record emptied by Ruby's ``deactivate`` becomes
    the individual removals, never our ``deactivate``, which would also clear excluded users
    and the percentage of time that Ruby never saw. ``old`` None means the flag has no record
    yet: the percentage is then always written (``activate_percentage``, 0 included), so the
    flag exists even when ``new`` is empty.
    ``new`` None means Ruby deleted the flag.
    """
    if new is None:
        return [] if old is None else [("delete", ())]
    base = old or RubyRecord()
    writes: list[Write] = []
    if old is None or new.percentage != base.percentage:
        # A new flag's percentage is set by an add, even at 0: an add creates the flag, where
        # a removal from a flag that does not exist is refused (UnknownFlagError).
        if new.percentage or old is None:
            writes.append(("activate_percentage", (new.percentage,)))
        else:
            writes.append(("deactivate_percentage", ()))
    old_users, new_users = _members(base.users), _members(new.users)
    added = [u for u in new_users if u not in old_users]
    removed = [u for u in old_users if u not in new_users]
    if added:
        writes.append(("activate_users", (added,)))
    if removed:
        writes.append(("deactivate_users", (removed,)))
    old_groups, new_groups = _members(base.groups), _members(new.groups)
    writes += [("activate_group", (g,)) for g in new_groups if g not in old_groups]
    writes += [("deactivate_group", (g,)) for g in old_groups if g not in new_groups]
    if any(key not in new.data for key in base.data):
        # Our data keys can only be removed all at once.
        writes.append(("clear_feature_data", ()))
        if new.data:
            writes.append(("set_feature_data", (dict(new.data),)))
    else:
        changed = {
            key: value
            for key, value in new.data.items()
            if key not in base.data or not _same_json(value, base.data[key])
        }
        if changed:
            writes.append(("set_feature_data", (changed,)))
    return writes
