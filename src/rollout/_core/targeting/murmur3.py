"""MurmurHash3 x86 32-bit, in pure Python: the hash flagd's ``fractional`` buckets with.

flagd hashes the bucketing string's UTF-8 bytes with seed 0 (github.com/twmb/murmur3
StringSum32); the same bytes give the same bucket here, in flagd and in every flagd provider.
"""

from __future__ import annotations

import struct

__all__ = ["murmur3_32"]

_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_MASK = 0xFFFFFFFF


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """The unsigned 32-bit MurmurHash3 (x86 variant) of ``data``."""
    length = len(data)
    blocks = length // 4
    h = seed & _MASK
    # The rotations are written out (no helper call per block): this runs once per check.
    for block in struct.unpack_from(f"<{blocks}I", data):
        k = (block * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
        h = ((h << 13) | (h >> 19)) & _MASK
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[blocks * 4 :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h
