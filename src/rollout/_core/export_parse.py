"""Parsing an export one flag at a time (rollout._core.codec.decode).

``json.loads`` of a whole export of a million users builds a million ``[wall, counter, node,
true]`` lists, their ints and their keys, all interleaved in the interpreter's small-object
arenas. Decoding keeps the keys (and shares one Register among the users), drops the rest, but
the arenas, each pinned by a few kept objects, stay with the process: 200 MB more RSS after a
merge than the registers need. Here the top-level object and its ``flags`` object are walked by
hand and each flag's registers parsed by ``json`` alone, then handed to a callback that decodes
them while they are the newest objects: what it keeps is allocated apart from the parse's
garbage, which then leaves whole arenas empty, given back to the system. The copies of the
keys would raise the peak while a big flag's parse is held; the text of the export (55 MB at a
million users) is let go first, past such a flag, which keeps the peak where it was.

A big flag's runs of member registers are not parsed by ``json`` at all: they are cut from the
text in bulk (rollout._core.member_runs) and handed to the callback beside the flag's other
registers, which may answer None to have the flag parsed by ``json`` after all.

Only the shape of an export is walked; anything else (not an object, a syntax error, trailing
text) returns None, and the caller parses the text whole, for the same result or error as
``json.loads``. Duplicate names behave as in ``json.loads``: the last value, the first place.
"""

from __future__ import annotations

from .lazy import LazyModule
from .member_runs import KEY_STARTS, MIN_RUN, Run, run_end, take_run

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Callable
    from typing import Any, TypeAlias
else:
    json = LazyModule("json")  # loaded by the first export parsed (lazy.py)

__all__ = ["parse_by_flag"]

#: What the callback makes of one flag: its name, its registers as parsed (but for its runs of
#: member registers) and those runs, each with the number of registers parsed before it -> what
#: to keep; None (only when given runs) to be given the flag again, all of it parsed by json.
OnFlag: TypeAlias = "Callable[[str, Any, list[tuple[int, Run]]], Any]"


def parse_by_flag(text: str, decoder: json.JSONDecoder, on_flag: OnFlag) -> dict[str, Any] | None:
    """The top-level object of ``text``, its ``flags`` object (when it is one) holding
    ``on_flag(name, registers)`` for each flag, in the order parsed; None when ``text`` is not
    an object of members, or not valid JSON (a ValueError of ``decoder``).

    The caller should keep no reference to ``text``: past a flag that takes most of it (a
    million users), what is left is copied and the whole let go before that flag is decoded."""
    parser = _Parser(text, decoder, on_flag)
    del text
    try:
        return parser.document()
    except ValueError:  # JSONDecodeError, or a constant (NaN) the decoder refuses
        return None


class _Parser:
    """Positions are in ``self.text``, which :meth:`flag` may replace by what is left of it:
    the methods read it anew after every value parsed, never keep it."""

    def __init__(self, text: str, decoder: json.JSONDecoder, on_flag: OnFlag) -> None:
        self.text = text
        self.decoder = decoder
        self.on_flag = on_flag

    def document(self) -> dict[str, Any] | None:
        document: dict[str, Any] = {}
        end = self.members(self.skip(0), document, self.member)
        if end is None or self.skip(end) != len(self.text):
            return None  # not an object, or text after it: json.loads says which
        return document

    def member(self, key: str, at: int) -> tuple[Any, int] | None:
        if key == "flags" and self.text[at : at + 1] == "{":
            flags: dict[str, Any] = {}
            end = self.members(at, flags, self.flag)
            return None if end is None else (flags, end)
        return self.value(key, at)

    def flag(self, name: str, at: int) -> tuple[Any, int]:
        runs: list[tuple[int, Run]] = []
        registers: dict[str, Any] = {}
        scanned = [-1]  # a short run ends there: no run starts before it (each text read once)

        def take(at: int) -> int | None:
            if at < scanned[0] or not self.text.startswith(KEY_STARTS, at):
                return at  # another register, or inside a short run: parsed by json
            end = run_end(self.text, at)
            if end == at:
                return None  # not written as export() writes: the whole flag is json's
            if end - at < MIN_RUN:
                scanned[0] = end
                return at  # a few: parsed by json
            run = take_run(self.text, at, end)
            if run is None:
                return None
            runs.append((len(registers), run))
            return end

        end = self.members(at, registers, self.value, take)
        if end is not None:
            decoded = self.on_flag(name, registers, runs)
            del registers, runs
            if decoded is not None:
                return decoded, self.let_go(at, end)
        registers, end = self.decoder.raw_decode(self.text, at)  # or its error
        end = self.let_go(at, end)  # the text of a big flag goes before it is decoded
        return self.on_flag(name, registers, []), end  # decoded before the next flag is parsed

    def value(self, _key: str, at: int) -> tuple[Any, int]:
        parsed: tuple[Any, int] = self.decoder.raw_decode(self.text, at)
        return parsed

    def let_go(self, at: int, end: int) -> int:
        """``end``, or 0 when the text was cut there: past a flag that took most of it."""
        if end - at > len(self.text) // 2:
            self.text, end = self.text[end:], 0
        return end

    def members(
        self,
        at: int,
        into: dict[str, Any],
        value: Callable[[str, int], tuple[Any, int] | None],
        skip_run: Callable[[int], int | None] | None = None,
    ) -> int | None:
        """Parse the object at ``at`` into ``into``, each member's value by ``value(key,
        index)`` (the value and the index after it); the index after the object, or None when
        there is no object there or its members are not separated as JSON's are. Where a
        member starts, ``skip_run(index)`` may take members itself (the index after them), or
        answer None to stop: then None."""
        if self.text[at : at + 1] != "{":
            return None
        at = self.skip(at + 1)
        if self.text[at : at + 1] == "}":
            return at + 1
        while True:
            if skip_run is not None:
                skipped = skip_run(at)
                if skipped is None:
                    return None
                at = skipped
            if self.text[at : at + 1] != '"':
                return None
            key, at = self.decoder.raw_decode(self.text, at)  # a string
            at = self.skip(at)
            if self.text[at : at + 1] != ":":
                return None
            parsed = value(key, self.skip(at + 1))
            if parsed is None:
                return None
            into[key], at = parsed
            at = self.skip(at)
            separator = self.text[at : at + 1]
            if separator == "}":
                return at + 1
            if separator != ",":
                return None
            at = self.skip(at + 1)

    def skip(self, at: int) -> int:
        """The index of the first character at or after ``at`` that is not JSON whitespace."""
        text = self.text
        while at < len(text) and text[at] in " \t\n\r":
            at += 1
        return at
