"""The cluster's shared secret: refused when it is guessable, and how to make a good one.

Anyone who records one handshake can test guesses of the secret against it offline (it is a
MAC key's input), so the secret must be too large a space to search: 128 bits of entropy. The
entropy of a given string cannot be measured, only bounded from what it shows, so this is an
estimate meant to refuse what people type (words, names, repeats, short hex) and to accept what
a generator makes; it cannot see that a long, varied string came from a small space (a sentence
from a book, a six-word passphrase), which is why the error points at a generator. The
estimate itself is ``rollout._core.entropy``, shared with ``rollout serve``'s token check.
"""

from __future__ import annotations

import secrets

from .._core.entropy import MIN_SECRET_BITS, estimated_bits

__all__ = ["MIN_SECRET_BITS", "check_secret", "estimated_bits", "new_secret"]

_HOW = (
    "make one with `rollout secret`, or "
    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
)


def new_secret() -> str:
    """A fresh secret: 32 random bytes (256 bits), URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


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
