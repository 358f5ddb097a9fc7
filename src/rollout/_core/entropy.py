"""How many bits of entropy a secret string seems to carry: an estimate from what it shows.

The entropy of a given string cannot be measured, only bounded from what it shows, so this is
an estimate meant to refuse what people type (words, names, repeats, short hex) and to accept
what a generator makes; it cannot see that a long, varied string came from a small space (a
sentence from a book, a six-word passphrase). Both secrets that key something an attacker can
test guesses against use it: the peer cluster's shared secret (``rollout.peer._secret``) and
the HTTP API's bearer tokens on a public address (``rollout serve``).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter
from typing import Final

__all__ = ["MIN_SECRET_BITS", "estimated_bits"]

#: A search of 2**128 guesses is out of reach whatever each guess costs.
MIN_SECRET_BITS: Final = 128
# What zlib adds to any input: subtracted so a short random string is not penalised for it.
_ZLIB_OVERHEAD: Final = len(zlib.compress(b"", 9))


def estimated_bits(secret: bytes) -> float:
    """An upper-bound guess of the secret's entropy in bits (see the module's docstring).

    The empirical entropy of its characters (how evenly it uses the symbols it uses) times its
    length, where the length is what is left once zlib has removed the repeats: "aaaa…" and
    "abcabcabc…" score what one copy of the pattern does.
    """
    secret = _without_runs(secret)
    if not secret:
        return 0.0
    counts = Counter(secret)
    size = len(secret)
    # abs: one symbol only sums to -0.0, which messages printed as "about -0 bits".
    per_symbol = abs(sum(n / size * math.log2(n / size) for n in counts.values()))
    unrepeated = min(size, max(1, len(zlib.compress(secret, 9)) - _ZLIB_OVERHEAD))
    return per_symbol * unrepeated


#: Keyboard rows (US layout), each also read backwards: a walk along one is no choice at all.
_ROWS: Final = ("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./")


def _next_keys() -> frozenset[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for row in _ROWS:
        for text in (row, row.upper(), row[::-1], row.upper()[::-1]):
            pairs.update(zip(text.encode(), text[1:].encode(), strict=False))
    return frozenset(pairs)


_NEXT_KEYS: Final = _next_keys()


def _without_runs(secret: bytes) -> bytes:
    """The secret less every byte that only continues a run: the next or previous character
    ("abcdef", "9876") or the next key on a keyboard row ("qwerty"). Such a byte adds no choice,
    so it adds nothing to the estimate; the run's first byte stays."""
    kept = bytearray(secret[:1])
    for previous, byte in itertools.pairwise(secret):
        if abs(byte - previous) != 1 and (previous, byte) not in _NEXT_KEYS:
            kept.append(byte)
    return bytes(kept)
