"""What a PostgreSQL failure means, in an operator's words: the one place psycopg's errors
become :class:`~rollout.errors.StoreError`.

* the server cannot be reached, ended the connection (a restart, ``pg_terminate_backend``), or
  is too busy (too many connections, a lock or serialization conflict, a statement timeout)
  before the commit was sent: :class:`StoreUnavailableError`, nothing was written;
* the connection failed while the COMMIT was on its way: :class:`StoreOutcomeUnknownError`, as
  the server may have committed before the answer was lost;
* anything else: :class:`StoreError`, its message saying the cause first when SQLSTATE tells
  it (a full disk, a read-only server, a refused login, a missing database, no permission).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import StoreError, StoreOutcomeUnknownError, StoreUnavailableError

if TYPE_CHECKING:
    import psycopg

__all__ = ["translate"]

# SQLSTATE codes and classes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
# that mean "try again later, nothing was done".
_TRANSIENT_CODES = {
    "40001": "a serialization conflict with another transaction",
    "40P01": "a deadlock with another transaction",
    "55P03": "a lock held by another transaction",
    "57014": "the statement timed out (statement_timeout) or was cancelled",
    "53300": "the server has too many connections",
    "57P01": "the server ended the connection (a restart, or pg_terminate_backend)",
    "57P02": "the server crashed and ended the connection",
    "57P03": "the server is starting up or shutting down",
}
_CAUSES = {
    "53100": "the server's disk is full",
    "25006": "the server only takes reads (a standby, or default_transaction_read_only)",
    "42501": "this login may not do this (check its GRANTs on the schema)",
    "3D000": "no such database",
    "28P01": "the login was refused (user or password)",
    "28000": "the login was refused (pg_hba.conf)",
}
# libpq's own messages when there is no SQLSTATE (a failure to connect).
_CONNECT_CAUSES = (
    ("invalid", "the URL has a parameter libpq refuses"),
    ("password authentication failed", "the login was refused (user or password)"),
    ("no pg_hba.conf entry", "the login was refused (pg_hba.conf)"),
    ("does not exist", "no such database or role"),
)


def translate(
    exc: psycopg.Error,
    context: str,
    *,
    lost: bool,
    committing: bool,
    timeout: float | None = None,
) -> StoreError:
    """``exc`` as a StoreError. ``lost``: the connection is gone; ``committing``: the COMMIT
    had been sent when it failed; ``timeout``: it was cut after waiting that many seconds."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "sqlstate", None)
    if timeout is not None:
        message = f"no answer within {timeout:g} s (the store's timeout)"
    if committing and lost:
        return StoreOutcomeUnknownError(
            f"{context}: the connection failed while committing, so the write may or may not "
            f"have happened: read the flag back once PostgreSQL answers to know: {message}"
        )
    if code in _TRANSIENT_CODES:
        return StoreUnavailableError(
            f"{context}: {_TRANSIENT_CODES[code]}; nothing was written: {message}"
        )
    if code in _CAUSES:
        return StoreError(f"{context}: {_CAUSES[code]}: {message}")
    if code is None:
        for needle, cause in _CONNECT_CAUSES:
            if needle in message:
                return StoreError(f"{context}: {cause}: {message}")
    import psycopg

    if (
        lost
        or (code or "").startswith("08")
        or (code is None and isinstance(exc, psycopg.OperationalError))
    ):
        return StoreUnavailableError(
            f"{context}: cannot reach PostgreSQL (nothing was written): {message}"
        )
    return StoreError(f"{context}: {message}")
