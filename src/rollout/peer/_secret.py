"""The cluster's shared secret: refused when it is guessable, and how to make a good one.

Anyone who records one handshake can test guesses of the secret against it offline (it is a
MAC key's input), so the secret must be too large a space to search: 128 bits of entropy. The
entropy of a given string cannot be measured, only bounded from what it shows, so this is an
estimate meant to refuse what people type (words, names, repeats, short hex) and to accept what
a generator makes; it cannot see that a long, varied string came from a small space (a sentence
from a book, a six-word passphrase), which is why the error points at a generator.
"""

from __future__ import annotations

import itertools
import math
import secrets
import zlib
from collections import Counter
from typing import Final

__all__ = ["MIN_SECRET_BITS", "check_secret", "estimated_bits", "new_secret"]

MIN_SECRET_BITS: Final = 128
_HOW = (
    "make one with `rollout secret`, or "
    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
)
# What zlib adds to any input: subtracted so a short random string is not penalised for it.
_ZLIB_OVERHEAD: Final = len(zlib.compress(b"", 9))


def new_secret() -> str:
    """A fresh secret: 32 random bytes (256 bits), URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


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
    per_symbol = -sum(n / size * math.log2(n / size) for n in counts.values())
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


def check_secret(secret: str | bytes | None) -> bytes | None:
    """The secret as bytes; TypeError or ValueError (naming ``secret``) if it is unfit."""
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes):
        raise TypeError(f"secret must be str or bytes, got {type(secret).__name__}")
    if not secret:
        raise ValueError(f"secret must not be empty: {_HOW}")
    bits = estimated_bits(secret)
    if bits < MIN_SECRET_BITS:
        # The value itself is not shown: it may be the real secret of another cluster.
        raise ValueError(
            f"secret is too weak: about {bits:.0f} bits of entropy in {len(secret)} bytes, "
            f"and at least {MIN_SECRET_BITS} are required (a recorded handshake lets anyone "
            f"test guesses offline); {_HOW}"
        )
    return secret
