"""Runs of member registers read from an export's text in bulk (rollout._core.export_parse).

An export lists a big flag's users one after another, ``"user:42":[wall,counter,node,true],``
a million times, nearly all with one of a few registers (a bulk write stamps all its users
alike). Parsed by ``json``, each builds a list and two ints that the codec then checks one by
one in Python: most of the time of a merge. Here one regular expression finds where such a run
ends, ``str.split`` cuts it at its quotes into the keys and the texts of their registers, and
the codec parses and checks each distinct register text once (codec._decode_runs): decoding
an export of a million users (20 bulk writes) takes 4.1 G instructions, 10.9 G before.

Nothing is taken on the expression's word: it only says where to cut. The keys must be ASCII
without a control character or a backslash (each reads as written, as json would read it),
and the codec takes it only if every text between two keys is ``:[...],`` holding a valid
register. That makes the split exact: a quote inside a bracketed text would leave, between a
key and that quote, a text with no ``]``, refused; so the quotes are the keys' own, two a key,
and each key is one the expression matched (a member prefix, then a member). Anything else
(spacing as ``json.dumps(indent=...)`` writes, escapes, other text) is left to ``json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .keys import TARGETING_PREFIXES

__all__ = ["KEY_STARTS", "MIN_RUN", "Run", "run_end", "take_run"]

#: Characters: a run shorter than this is parsed by ``json`` (as fast for a few registers).
MIN_RUN = 4096

# Where a run may end: items of a member key and a bracketed text without a ``]`` (the module's
# docstring says why what it matched can be trusted once the texts are checked).
_RUN = re.compile(r'(?:"(?:user|exclude|group):[^"]++":\[[^]]*+\],)*+')  # possessive: 20% less
#: Where a member register starts: a key's quote and a member prefix.
KEY_STARTS = tuple(f'"{prefix}' for prefix in TARGETING_PREFIXES)
#: The ASCII a key may hold as written: not a control character (json refuses it), nor "\\"
#: (an escape: the key would read otherwise).
_PLAIN = bytes(range(0x20, 0x80)).replace(b"\\", b"")


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive member registers: ``keys[i]``'s register is the text ``registers[i]``,
    ``:[wall,counter,node,value],`` unless the run is malformed (the codec checks)."""

    keys: list[str]
    registers: list[str]


def run_end(text: str, at: int) -> int:
    """Where a run of member registers starting at ``at`` may end (``at``: none there, or not
    written compactly as ``export()`` writes them)."""
    return _RUN.match(text, at).end()  # type: ignore[union-attr]  # (...)* always matches


def take_run(text: str, at: int, end: int) -> Run | None:
    """The run of member registers from ``at`` (a key's opening quote) to ``end`` (after its
    last comma, :func:`run_end`); None when its keys would not read as written (an escape, a
    control character json refuses, a character beyond ASCII). The registers' texts are the
    codec's to check: there, json refuses each of these or reads it as whitespace."""
    parts = text[at:end].split('"')  # '', key, register, key, register...: keys hold no quote
    keys = parts[1::2]
    written = "".join(keys)
    if not written.isascii() or written.encode().translate(None, _PLAIN):
        return None
    return Run(keys, parts[2::2])
