"""The names a big flag lists (its users), taken from its registers in C (rollout._core.state).

A flag of a million listed users is a million ``user:<id>`` keys, nearly all holding ``true``.
Building its view took them one by one in a set comprehension (a tuple, two tests and a slice a
key in the interpreter): about a fifth of a reopen's or a merge's client time. Here ``compress``
keeps the keys whose register holds a true value and ``map`` slices the prefix off each, both
in C; the few keys without the prefix (``exists``, data, history...) are sliced too, and their
slices taken out again unless a listed user has that name.
"""

from __future__ import annotations

from itertools import compress
from operator import attrgetter, itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["present_names"]

_VALUE = attrgetter("value")


def present_names(registers: Mapping[str, Any], prefix: str, others: Iterable[str]) -> set[str]:
    """``{key[len(prefix):] for each key of registers starting with prefix, its value true}``
    (each register a state.Register); ``others``: every key not starting with ``prefix``."""
    start = len(prefix)
    present = compress(registers, map(_VALUE, registers.values()))
    names = set(map(itemgetter(slice(start, None)), present))
    for key in others:
        if registers[key].value:  # taken above: its slice is a name only if a user's too
            name = key[start:]
            listed = registers.get(prefix + name)
            if listed is None or not listed.value:
                names.discard(name)
    return names
