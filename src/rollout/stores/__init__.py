"""Stores keep a replica's registers: in memory, in an SQLite file, in Redis or in PostgreSQL.

The interface is :class:`Store` (``rollout.stores._base``); this package is the catalogue: the
interface, the built-in stores that need nothing but the standard library, and
:func:`open_store` for a URL. Redis's store lives in :mod:`rollout.redis` (it needs redis-py),
PostgreSQL's in :mod:`rollout.postgres` (it needs psycopg).

For a store of one's own (docs/stores.md): the register types (:class:`Register`,
:data:`Delta`, :class:`Timestamp`), the rules every store applies (:func:`merge_delta`,
:func:`merge_registers`, :func:`discard_delta`) and a checked encoding
(:func:`encode_registers`, :func:`decode_registers`).
"""

from __future__ import annotations

from .._core.clock import Timestamp
from .._core.lazy import lazy_names
from .._core.register_merge import merge_registers
from .._core.state import Delta, Register
from ._base import Store
from ._registers import decode_registers, discard_delta, encode_registers, merge_delta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
    from ..memory._store import MemoryStore
    from ..sqlite._store import SQLiteStore

# The register and quarantine types and the merge rules are here for stores of one's own.
__all__ = [
    "Delta",
    "Judged",
    "MemoryStore",
    "QuarantineState",
    "QuarantinedRegister",
    "Register",
    "SQLiteStore",
    "Store",
    "Timestamp",
    "decode_registers",
    "discard_delta",
    "encode_registers",
    "merge_delta",
    "merge_registers",
    "open_store",
]


#: Names loaded when first asked for (issue 15: `import rollout` stays light): SQLiteStore loads
#: sqlite3, pathlib and urllib.parse, and a process whose flags live in memory or in Redis
#: never opens a file; the quarantine's types are dataclasses, and dataclasses loads inspect
#: and ast; Rollout() with no store keeps its flags without a MemoryStore.
_LAZY = {
    "MemoryStore": "rollout.memory._store",
    "SQLiteStore": "rollout.sqlite._store",
    "Judged": "rollout._core.quarantined",
    "QuarantineState": "rollout._core.quarantined",
    "QuarantinedRegister": "rollout._core.quarantined",
}


__getattr__ = lazy_names(globals(), _LAZY)


def open_store(url: str, *, create: bool = True) -> Store:
    """A store for a URL: ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
    ``redis://host:6379/0?namespace=app``, ``redis+sentinel://host:26379/mymaster`` or
    ``postgresql://user@host:5432/dbname?schema=rollout``.

    ``create=False`` opens an SQLite file only if it exists (:class:`SQLiteStore`), a
    PostgreSQL schema only if it exists; other stores have nothing to create and ignore it.
    """
    # Imported here: redaction compiles its patterns on import, and only an error message
    # needs it.
    from .._core.redact import redact_url, scrub

    if not isinstance(url, str):
        raise TypeError(f"store must be a Store or a URL string, got {redact_url(url)!r}")
    if url in ("memory://", "memory:"):
        from ..memory._store import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite://"):
        from ..sqlite._store import SQLiteStore

        return SQLiteStore.from_url(url, create=create)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        # Imported here: redis-py is an optional dependency (`pip install rollout[redis]`).
        from ..redis._store import RedisStore

        return RedisStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg is an optional dependency (`pip install rollout[postgres]`).
        from ..postgres._store import PostgresStore

        return PostgresStore.from_url(url, create=create)
    if "://" not in url:
        # A bare path (`--store /tmp/x.db`): say the URL that names that file.
        raise ValueError(
            f"store URL {redact_url(url)!r} has no scheme: for an SQLite file write "
            f"{redact_url('sqlite:///' + url)!r} (sqlite:///relative.db, sqlite:////abs/path.db)"
        )
    scheme = url.split(":", 1)[0]
    raise ValueError(
        f"store URL {redact_url(url)!r} has an unknown scheme {scrub(scheme, url)!r} "
        "(known: memory://, sqlite:///path, redis://, redis+sentinel://, postgresql://)"
    )
