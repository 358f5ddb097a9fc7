"""One register and the rule that merges two: last writer wins (docs/architecture.md).

A register is ``(timestamp, value)`` under a key such as ``percentage`` or ``user:42``. Merging
keeps, per key, the register with the larger timestamp, which makes merge commutative,
associative and idempotent: deltas may arrive late, twice, or out of order. A flag's watermark
registers hide older registers of some keys (:func:`is_hidden`; which keys, in
:mod:`rollout._core.keys`). What a flag holds and shows is :class:`rollout._core.state.FlagState`.
"""

from __future__ import annotations

from collections import namedtuple

from .clock import MIN_TIMESTAMP, Timestamp
from .keys import is_data, is_definition, is_targeting
from .lazy import LazyModule

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Mapping
    from typing import Any, NamedTuple
else:
    json = LazyModule("json")  # loaded by the first tie or data value compared (lazy.py)

__all__ = ["Delta", "Register", "is_hidden", "stamped", "tiebreak", "wins"]


if TYPE_CHECKING:  # as clock.Timestamp

    class Register(NamedTuple):
        ts: Timestamp
        value: Any
else:
    Register = namedtuple("Register", ["ts", "value"])


#: flag name -> register key -> register. Both a whole state and a change to one are deltas.
Delta = dict[str, dict[str, Register]]


def tiebreak(value: Any) -> str:
    """A value's canonical JSON: equal for equal JSON values, and ordered, to break ties."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def wins(new: Register, old: Register | None) -> bool:
    """Whether ``new`` replaces ``old`` under the last-writer-wins rule.

    Two distinct writes never share a timestamp (the node id is part of it), but equal
    timestamps can still meet with different values: defaults at MIN_TIMESTAMP. Comparing a
    canonical encoding of the value then keeps the merge commutative.
    """
    if old is None:
        return True
    if new.ts != old.ts:
        return new.ts > old.ts
    return new.value != old.value and tiebreak(new.value) > tiebreak(old.value)


def is_hidden(
    key: str,
    ts: Timestamp,
    reset: Timestamp,
    data_reset: Timestamp,
    definition_reset: Timestamp = MIN_TIMESTAMP,
) -> bool:
    """Whether a register is hidden by the flag's watermarks (and so may be dropped)."""
    if is_data(key):
        return ts < data_reset
    if ts < definition_reset and is_definition(key):
        return True
    return ts < reset and is_targeting(key)


def stamped(values: Mapping[str, Any], ts: Timestamp) -> dict[str, Register]:
    """A write's values as registers of one timestamp. One Register per value, not per key:
    every user of ``activate_users`` (a million ids) holds the same ``(ts, True)``, and a tuple
    each would be 56 MB more in the replica and the memory store."""
    listed, unlisted = Register(ts, True), Register(ts, False)
    return {
        key: listed if value is True else unlisted if value is False else Register(ts, value)
        for key, value in values.items()
    }
