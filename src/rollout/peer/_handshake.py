"""The opening of every peer connection: a mutual challenge-response over fresh nonces.

Published constructions only, in the standard library's ``hmac``:

- **Keys: HKDF** (RFC 5869) with HMAC-SHA256, over the secret stretched by scrypt (RFC 7914):
  ``PRK = HKDF-Extract(salt, scrypt(secret))`` once per transport; per connection
  ``HKDF-Expand(PRK, "rollout/2" || Ni || Nr, 128)`` is cut into four 32-byte keys: the
  initiator's proof key, the responder's proof key, and the frame MAC key of each direction.
  The raw secret never keys a MAC.
- **Authentication: three-pass mutual authentication with a keyed MAC** (ISO/IEC 9798-4,
  mechanism 3, the shape of every nonce-based challenge-response), where the responder proves
  only after the initiator did::

      1. I -> R   OPENING = magic || mode || Ni            (fixed size, in clear)
      2. R -> I   OPENING = magic || mode || Nr            (fixed size, in clear)
      3. I -> R   proof_I = HMAC(K_proof_I, "initiator" || transcript)
      4. R -> I   proof_R = HMAC(K_proof_R, "responder" || transcript), then R's HELLO frame
      5. I -> R   I's HELLO frame

  ``transcript`` is both openings, so a proof is bound to both nonces: a message recorded on
  one connection is worthless on any other (the other side's nonce is fresh), and a proof sent
  back to its author fails (each direction has its own key).

A stranger who connects learns the magic and a random nonce, and gets no MAC to test guesses
against; a passive recorder sees proof_I, which a guess of the secret can be checked against
offline, so secrets must carry at least 128 bits of entropy (:mod:`rollout.peer._secret`).
Without a secret (loopback, or ``insecure=True``) the openings are exchanged with mode 0 and
there are no proofs and no MACs. Steps 1-4 up to the proofs are :func:`authenticate`; the
HELLOs are :mod:`rollout.peer._hello`'s. Everything else here is pure.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
from typing import Final, NamedTuple

from ._frames import FrameAuthError, FrameError, OwnOpeningError

__all__ = [
    "NONCE_SIZE",
    "OPENING_SIZE",
    "PROOF_SIZE",
    "SessionKeys",
    "authenticate",
    "check_mode",
    "check_proof",
    "hkdf_expand",
    "hkdf_extract",
    "new_nonce",
    "opening",
    "proof",
    "read_opening",
    "session_keys",
    "transport_key",
]

MAGIC: Final = b"rollout/2"
NONCE_SIZE: Final = 32
OPENING_SIZE: Final = len(MAGIC) + 1 + NONCE_SIZE
PROOF_SIZE: Final = hashlib.sha256().digest_size
#: HKDF-Extract salt: a fixed, public, protocol-specific string (RFC 5869, section 3.1).
SALT: Final = b"rollout peer v2"
_INFO: Final = b"rollout/2"
_MODE_OPEN: Final = 0
_MODE_SECRET: Final = 1


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 section 2.2: ``PRK = HMAC-Hash(salt, IKM)``."""
    return hmac.new(salt or bytes(PROOF_SIZE), ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 section 2.3: ``T(i) = HMAC-Hash(PRK, T(i-1) || info || i)``, concatenated."""
    if not 0 < length <= 255 * PROOF_SIZE:
        raise ValueError(f"length must be from 1 to {255 * PROOF_SIZE}, got {length!r}")
    output, block = b"", b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


#: scrypt's cost (RFC 7914): 16 MiB and about 0.1 s once per process, and as much again for
#: every guess of an attacker who recorded a handshake and tries a word list against it.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1


@functools.lru_cache(maxsize=8)
def transport_key(secret: bytes) -> bytes:
    """The pseudorandom key every connection's keys are expanded from (once per transport).

    ``HKDF-Extract(salt, scrypt(secret))``: the secret is stretched first with scrypt (RFC 7914,
    memory-hard), so that checking one guess against a recorded proof costs what scrypt costs,
    not one HMAC. Secrets of 128 bits make guessing hopeless anyway; this is for the secret that
    passes the strength estimate but came from a smaller space than it looks (a sentence).
    Cached: a process that makes several transports with one secret pays once.
    """
    stretched = hashlib.scrypt(
        secret,
        salt=SALT,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=PROOF_SIZE,
    )
    return hkdf_extract(SALT, stretched)


class SessionKeys(NamedTuple):
    proof_initiator: bytes
    proof_responder: bytes
    initiator_to_responder: bytes
    responder_to_initiator: bytes


def session_keys(prk: bytes, initiator_nonce: bytes, responder_nonce: bytes) -> SessionKeys:
    """The four keys of one connection, from both of its nonces (fixed size: unambiguous)."""
    for value, argument in (
        (initiator_nonce, "initiator_nonce"),
        (responder_nonce, "responder_nonce"),
    ):
        if not isinstance(value, bytes) or len(value) != NONCE_SIZE:
            raise ValueError(f"{argument} must be {NONCE_SIZE} bytes, got {value!r:.80}")
    okm = hkdf_expand(prk, _INFO + initiator_nonce + responder_nonce, 4 * PROOF_SIZE)
    return SessionKeys(*(okm[i : i + PROOF_SIZE] for i in range(0, len(okm), PROOF_SIZE)))


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def opening(nonce: bytes, *, secret: bool) -> bytes:
    """What each side sends first: the magic, whether it uses a secret, and its nonce."""
    return MAGIC + bytes((_MODE_SECRET if secret else _MODE_OPEN,)) + nonce


def read_opening(data: bytes) -> tuple[bytes, bool]:
    """``(nonce, whether the peer uses a secret)`` from its opening; FrameError if not one."""
    if len(data) != OPENING_SIZE or not data.startswith(MAGIC):
        if data[4:6] == b"\x01\x01":  # a version-1 HELLO frame: length, version 1, kind 1
            raise FrameError("the peer speaks protocol 1 (an earlier rollout 0.1): upgrade it")
        raise FrameError(f"not a rollout/2 opening: {data[:16]!r}")
    mode = data[len(MAGIC)]
    if mode not in (_MODE_OPEN, _MODE_SECRET):
        raise FrameError(f"unknown handshake mode {mode}")
    return data[len(MAGIC) + 1 :], mode == _MODE_SECRET


def check_mode(peer_has_secret: bool, *, secret: bool) -> None:
    """FrameAuthError when one side has a secret and the other has none."""
    if peer_has_secret != secret:
        mine, theirs = ("a", "no") if secret else ("no", "a")
        raise FrameAuthError(
            f"this node has {mine} secret and the peer has {theirs} secret: "
            "every node of a cluster must use the same secret"
        )


def proof(key: bytes, role: bytes, transcript: bytes) -> bytes:
    """``HMAC(key, role || transcript)``: what proves knowledge of the secret, in one direction."""
    return hmac.new(key, role + transcript, hashlib.sha256).digest()


def check_proof(key: bytes, role: bytes, transcript: bytes, received: bytes) -> None:
    """Constant-time comparison; FrameAuthError if the peer does not know the secret."""
    if not hmac.compare_digest(proof(key, role, transcript), received):
        raise FrameAuthError(f"the {role.decode()}'s proof is wrong: the peer has another secret")


async def authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    prk: bytes | None,
    *,
    outbound: bool,
    in_flight: dict[bytes, bool],
) -> tuple[bytes, bytes] | None:
    """Steps 1-4 on one connection: ``(key for frames sent, key for frames received)``.

    None without a secret (``prk`` None: openings only). Every read is of a fixed size, so a
    peer that has not proved the secret never makes this side buffer more than an opening and
    a proof. FrameError (FrameAuthError for a wrong secret) ends the connection.
    """
    nonce = new_nonce()
    # Every nonce of this node's handshakes in progress, on any connection: an opening that
    # carries one is this node's own, relayed back to it on another connection. There both
    # sides would build the same transcript and keys and every proof would check, and the node
    # would take itself for the peer it dialled.
    in_flight[nonce] = False  # True once the other end of a reflection has seen it
    try:
        return await _authenticate(
            reader,
            writer,
            prk,
            opening(nonce, secret=prk is not None),
            outbound=outbound,
            in_flight=in_flight,
        )
    except (asyncio.IncompleteReadError, ConnectionError):
        if in_flight.get(nonce):
            # Our opening reached our own accepting side, which refused it and closed.
            raise OwnOpeningError("this node's own opening came back: it reached itself") from None
        raise
    finally:
        del in_flight[nonce]


async def _authenticate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    prk: bytes | None,
    mine: bytes,
    *,
    outbound: bool,
    in_flight: dict[bytes, bool],
) -> tuple[bytes, bytes] | None:
    if outbound:
        writer.write(mine)
        theirs = await reader.readexactly(OPENING_SIZE)
        their_nonce, their_mode = read_opening(theirs)
    else:
        # Not a word to a peer whose first bytes are not an opening.
        theirs = await reader.readexactly(OPENING_SIZE)
        their_nonce, their_mode = read_opening(theirs)
        writer.write(mine)  # before the mode check, so the dialler can say what is wrong
    check_mode(their_mode, secret=prk is not None)
    if their_nonce in in_flight:
        in_flight[their_nonce] = True  # so the dialling side knows why this side closes
        raise OwnOpeningError(
            "the peer's nonce is one of ours: this node's own opening came back (reflected on "
            "this connection or relayed from another)"
        )
    if prk is None:
        return None
    initiator, responder = (mine, theirs) if outbound else (theirs, mine)
    keys = session_keys(prk, initiator[-NONCE_SIZE:], responder[-NONCE_SIZE:])
    transcript = initiator + responder
    if outbound:
        writer.write(proof(keys.proof_initiator, b"initiator", transcript))
        try:
            received = await reader.readexactly(PROOF_SIZE)
        except asyncio.IncompleteReadError:
            raise FrameAuthError(
                "the peer closed the connection on our proof: it has another secret"
            ) from None
        check_proof(keys.proof_responder, b"responder", transcript, received)
        return keys.initiator_to_responder, keys.responder_to_initiator
    received = await reader.readexactly(PROOF_SIZE)
    check_proof(keys.proof_initiator, b"initiator", transcript, received)
    writer.write(proof(keys.proof_responder, b"responder", transcript))
    return keys.responder_to_initiator, keys.initiator_to_responder
