"""The PostgreSQL backend: the registers in a schema of the database a team already runs, and
LISTEN/NOTIFY as the transport, so a change in one process reaches every process on any host
connected to the same database.

Needs psycopg 3 (``pip install 'rollout[postgres]'``); nothing here is imported by
``import rollout``, and psycopg only when a store is opened.
"""

from __future__ import annotations

from ._store import PostgresStore
from ._transport import PostgresTransport

__all__ = ["PostgresStore", "PostgresTransport"]
