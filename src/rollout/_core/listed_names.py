"""A big flag's users and its other keys, taken from its registers in C (rollout._core.state).

A flag of a million listed users is a million ``user:<id>`` keys, nearly all holding ``true``.
Building its view took them one by one in the interpreter: the keys that are no user by a list
comprehension calling ``str.startswith`` (1,100 instructions a key: its arguments are parsed
on every call), the users' names by a set comprehension (a tuple, two tests and a slice a key).
From :data:`BULK` registers on, C loops do it:

* the other keys: the keys are joined, each after a NUL, and one regular expression finds those
  whose text does not start with the prefix (half the instructions); a key holding a NUL itself
  (an id may hold one) would be cut wrong: the count of NULs says so, and then the keys are
  taken one by one;
* the names: ``compress`` keeps the keys whose register holds a true value and ``map`` slices
  the prefix off each; the slices of the other keys are taken out again unless a listed user
  has that name.
"""

from __future__ import annotations

from functools import cache
from itertools import compress
from operator import attrgetter, itemgetter

from .lazy import LazyModule

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Mapping
    from typing import Any
else:
    re = LazyModule("re")  # by the first big flag

__all__ = ["BULK", "other_keys", "present_names"]

#: Registers of a flag from which its keys are taken by C loops.
BULK = 1000

_VALUE = attrgetter("value")


def other_keys(registers: Mapping[str, Any], prefix: str) -> list[str]:
    """The keys of ``registers`` that do not start with ``prefix``, in order."""
    if len(registers) >= BULK:
        joined = "\0" + "\0".join(registers)
        if joined.count("\0") == len(registers):  # else a key holds a NUL
            found: list[str] = _not_after(prefix).findall(joined)
            return found
    return [key for key in registers if not key.startswith(prefix)]


def present_names(registers: Mapping[str, Any], prefix: str, others: list[str]) -> set[str]:
    """``{key[len(prefix):] for each key of registers starting with prefix, its value true}``
    (each register a state.Register); ``others``: :func:`other_keys`."""
    start = len(prefix)
    if len(registers) < BULK:
        return {k[start:] for k, r in registers.items() if r.value and k[:start] == prefix}
    present = compress(registers, map(_VALUE, registers.values()))
    names = set(map(itemgetter(slice(start, None)), present))
    for key in others:
        if registers[key].value:  # taken above: its slice is a name only if a user's too
            name = key[start:]
            listed = registers.get(prefix + name)
            if listed is None or not listed.value:
                names.discard(name)
    return names


@cache
def _not_after(prefix: str) -> re.Pattern[str]:
    """A key, after its NUL, that does not start with ``prefix``: the whole key."""
    return re.compile("\0(?!" + re.escape(prefix) + ")([^\0]*)")
