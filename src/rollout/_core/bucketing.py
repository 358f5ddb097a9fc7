"""Percentage buckets: which users a "percentage of users" lets in.

Once shipped, a formula here never changes: users would flip between on and off across an
upgrade. ``tests/core/test_bucketing.py`` pins every formula (thresholds, seeds, buckets and
in/out decisions) against literal golden values; ``tests/core/test_ruby_golden.py`` also pins
the default and "ruby" formulas against the real gem.
"""

from __future__ import annotations

import math
import sys
from zlib import crc32

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

__all__ = [
    "MEMO_ID_LENGTH",
    "MEMO_SIZE",
    "Randomize",
    "bucket_seed",
    "crc32_memo",
    "id_bytes",
    "randomized_bucket",
    "remember_crc32",
    "ruby_bucket",
    "threshold",
]

Randomize: TypeAlias = "bool | Literal['ruby']"

_UINT32 = 0xFFFFFFFF
#: Ruby rollout's RAND_BASE: a bucket is let in when it is below RAND_BASE * percentage.
_RAND_BASE = (2**32 - 1) / 100.0


def threshold(percentage: float) -> int:
    """The bucket bound for ``percentage``: a user whose bucket is below it is let in.

    Identical to the Ruby gem's ``bucket < RAND_BASE * percentage`` below 100, as an integer
    (buckets are integers, so ``bucket < x`` is ``bucket < ceil(x)``; an int compares faster
    with an int than with a float). At 100 every bucket is let in: the gem leaves out the
    one-in-four-billion id whose CRC32 is 2**32-1, but "on for everybody" means everybody here.
    """
    if percentage >= 100.0:
        return _UINT32 + 1
    return math.ceil(_RAND_BASE * percentage)


def ruby_bucket(user_id: str, feature_name: str = "", *, randomize: bool = False) -> int:
    """The Ruby rollout gem 2.4-2.6 bucket: CRC32 of the id (plus the flag name if randomized).

    Kept for interoperability only: CRC32 is linear, so with ``randomize`` two flags whose names
    have the same length select related (often disjoint) sets of users.
    """
    text = user_id + feature_name if randomize else user_id
    try:
        return crc32(text.encode())
    except UnicodeEncodeError:
        return crc32(id_bytes(text))


#: How many ids the CRC32 memo holds before it starts again from empty.
MEMO_SIZE = 16_384
#: Longer ids are not kept: ids reach the memo from the network too (the HTTP API, OFREP), and
#: 16,384 ids of 64 KB each would hold a gigabyte. A UUID is 36 characters, an email rarely 100.
MEMO_ID_LENGTH = 128
_INT_HASH_MODULUS = sys.hash_info.modulus  # below it, an int's hash is the int
#: id (an exact str or int, as the check reads it) -> CRC32 of its text, the default bucket. The
#: same for every flag and every Rollout of the process, so one memo serves them all. A check
#: of a user seen recently then costs one dict lookup instead of ``str()``, ``encode()`` and
#: CRC32 (about half of a per-user check without groups). Bounded: when full it is emptied
#: (cheaper on the hot path than any eviction order, and a working set that fits stays warm).
#: Only exact ``str`` and ``int`` keys go in: ``True == 1`` and ``1.0 == 1`` must not share one.
crc32_memo: dict[object, int] = {}


def remember_crc32(ident: str | int) -> int:
    """The CRC32 bucket of ``ident`` (an exact str or int id), computed and memoised."""
    text = ident if type(ident) is str else str(ident)
    try:
        bucket = crc32(text.encode())
    except UnicodeEncodeError:
        bucket = crc32(id_bytes(text))
    # An int is kept only where its hash is itself: int hashes are not randomised, so ids
    # chosen to share one hash (n + k * (2**61 - 1)) would make every lookup walk them all.
    if len(text) <= MEMO_ID_LENGTH and (isinstance(ident, str) or 0 <= ident < _INT_HASH_MODULUS):
        if len(crc32_memo) >= MEMO_SIZE:
            crc32_memo.clear()
        crc32_memo[ident] = bucket
    return bucket


def id_bytes(user_id: str) -> bytes:
    """The bytes of an id that UTF-8 cannot encode, so a check still has a bucket for it.

    Only reached on ``UnicodeEncodeError`` (the fast path is ``str.encode()``). An id decoded
    from bytes with ``surrogateescape`` (``os.fsdecode``, a raw header) gets back the bytes it
    came from, the same bytes another language's client would hash; any other lone surrogate (a
    JSON ``"\\ud800"`` escape) is passed through. Writes refuse such ids (nobody can be listed
    under one); a check answers for them instead of raising, as it does for every str.
    """
    try:
        return user_id.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return user_id.encode("utf-8", "surrogatepass")


def bucket_seed(feature_name: str) -> int:
    """The per-flag seed of :func:`randomized_bucket`, computed once per flag."""
    # The unit separator keeps ("ab", "c") and ("a", "bc") apart.
    return crc32(feature_name.encode() + b"\x1f")


def randomized_bucket(user_id: str, seed: int) -> int:
    """Our per-flag bucket: CRC32 of ``name + "\\x1f" + id``, then the murmur3 finalizer.

    CRC32 alone is affine over GF(2), so buckets of two flags would differ by a constant XOR and
    stay correlated; the finalizer's multiplications break that, so two flags' selections are
    independent (two 20% flags share about 4% of users).
    """
    try:
        h = crc32(user_id.encode(), seed)
    except UnicodeEncodeError:
        h = crc32(id_bytes(user_id), seed)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _UINT32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _UINT32
    h ^= h >> 16
    return h
