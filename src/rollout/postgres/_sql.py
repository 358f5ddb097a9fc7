"""The PostgreSQL store's schema and statements, in one place.

Every table lives in one schema named by the store URL (``?schema=``, default ``rollout``): the
schema DDL names it, the statements do not (the connection's ``search_path`` is that schema).
Text columns that are compared or ordered use the "C" collation: byte order of UTF-8, which is
code point order, the order ``rollout._core.state.wins`` and the history key range assume
(a database's default collation, such as en_US, orders text otherwise).
"""

from __future__ import annotations

import re

from .._core.keys import (
    DATA_RESET,
    DEFINITION_RESET,
    RESET,
    sql_is_data,
    sql_is_definition,
    sql_is_history,
    sql_is_targeting,
)
from .._core.keys import sql_literal as _literal

__all__ = ["SCHEMA_VERSION", "check_schema_name", "ddl"]

#: Raised only by a change to the registers table; the quarantine's tables were there from the
#: start. A process finding another version refuses the schema instead of misreading it.
SCHEMA_VERSION = 1

#: How many changes (read by the listeners, see rollout.postgres._transport) are kept.
CHANGES_KEPT = 1000

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")


def check_schema_name(schema: object) -> str:
    """``schema`` if it is a plain lower-case SQL name: it is put into DDL and a channel name."""
    if not isinstance(schema, str) or not _NAME.fullmatch(schema):
        raise ValueError(
            f"schema must be 1 to 48 lower-case letters, digits or '_' (not starting with a "
            f"digit), got {schema!r}"
        )
    return schema


def ddl(schema: str) -> str:
    """The statements that create ``schema`` and its tables if missing (idempotent)."""
    s = check_schema_name(schema)
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.registers (
    flag TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    wall BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    node BIGINT NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (flag, key)
);
CREATE TABLE IF NOT EXISTS {s}.meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO {s}.meta (name, value)
    VALUES ('schema_version', {SCHEMA_VERSION}), ('version', 0), ('quarantine', 0)
    ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.changes (
    version BIGINT PRIMARY KEY,
    origin TEXT NOT NULL,
    delta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.quarantine_held (
    flag TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    wall BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    node BIGINT NOT NULL,
    value TEXT NOT NULL,
    origin TEXT NOT NULL,
    quarantined_at_ms BIGINT NOT NULL,
    PRIMARY KEY (flag, key)
);
CREATE TABLE IF NOT EXISTS {s}.quarantine_judged (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    wall BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    node BIGINT NOT NULL,
    UNIQUE (flag, key, wall, counter, node)
);
"""


# Every write first locks the version row: writers take turns, so versions are handed out in
# commit order, and NOTIFY delivers in commit order: a listener that sees version n + 2 after n
# knows it missed n + 1. The lock is held for one transaction of a few statements.
LOCK_VERSION = "SELECT value FROM meta WHERE name = 'version' FOR UPDATE"
BUMP_VERSION = "UPDATE meta SET value = value + 1 WHERE name = 'version' RETURNING value"
VERSION = "SELECT value FROM meta WHERE name = 'version'"
SCHEMA_VERSION_ROW = "SELECT value FROM meta WHERE name = 'schema_version'"
LOCK_QUARANTINE = "SELECT value FROM meta WHERE name = 'quarantine' FOR UPDATE"

# Last-writer-wins in SQL, one statement per register: replace only a register with a smaller
# (timestamp, value); the value comparison is the tie-break of rollout._core.state.wins
# (canonical JSON text, compared in code point order by the "C" collation).
UPSERT = """
INSERT INTO registers AS r (flag, key, wall, counter, node, value)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (flag, key) DO UPDATE SET
    wall = excluded.wall, counter = excluded.counter, node = excluded.node, value = excluded.value
WHERE (excluded.wall, excluded.counter, excluded.node, excluded.value)
    > (r.wall, r.counter, r.node, r.value)
"""

# Drop what a watermark hides (docs/architecture.md); which keys those are comes from
# rollout._core.keys, as for the replica, SQLite and Redis: all must drop the same registers.
PRUNE = f"""
DELETE FROM registers AS r
WHERE r.flag = %(flag)s AND (
    ({sql_is_targeting("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = %(flag)s AND key = {_literal(RESET)}))
    OR ({sql_is_data("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = %(flag)s AND key = {_literal(DATA_RESET)}))
    OR ({sql_is_definition("r.key")}
     AND (r.wall, r.counter, r.node) < (
        SELECT wall, counter, node FROM registers
        WHERE flag = %(flag)s AND key = {_literal(DEFINITION_RESET)}))
)
"""

# Keep the newest `limit` history events of a flag; their keys sort as their timestamps do, and
# the key range uses the primary key: this never reads a flag's users.
PRUNE_HISTORY = f"""
DELETE FROM registers
WHERE flag = %(flag)s AND {sql_is_history("key")} AND key NOT IN (
    SELECT key FROM registers WHERE flag = %(flag)s AND {sql_is_history("key")}
    ORDER BY key DESC LIMIT %(limit)s)
"""

# A compare-and-delete: the register goes only if it is still the one with this timestamp.
DISCARD = """
DELETE FROM registers
WHERE flag = %s AND key = %s AND wall = %s AND counter = %s AND node = %s
"""

# The whole store, one row per flag, timestamp and value, its keys joined by newlines
# (rollout.postgres._bulk); count(*) tells when a key held a newline itself.
GROUPED_LOAD = """
SELECT flag, wall, counter, node, value, count(*), string_agg(key, E'\\n')
FROM registers GROUP BY flag, wall, counter, node, value
"""
# Grouping by hash: the planner expects about a group per row and would sort a million rows
# (on disk, past work_mem). For the loading transaction only (SET LOCAL).
GROUPING_PLAN = """
SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off;
SET LOCAL work_mem = '32MB'; SET LOCAL jit = off
"""
GROUP_KEYS = """
SELECT key FROM registers
WHERE flag = %s AND wall = %s AND counter = %s AND node = %s AND value = %s
"""

# A big save (rollout.postgres._bulk): its registers are copied (COPY), in key order, into a
# table of this session's, emptied at commit, then merged by two statements: the keys stored
# already leave the copy, replacing the registers they beat; what is left is inserted, in key
# order (a B-tree filled left to right, not at random places). Writers hold the version row,
# so nobody inserts a register in between.
STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS rollout_staging (
    flag TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    wall BIGINT NOT NULL,
    counter BIGINT NOT NULL,
    node BIGINT NOT NULL,
    value TEXT COLLATE "C" NOT NULL
) ON COMMIT DELETE ROWS
"""
COPY_STAGING = "COPY pg_temp.rollout_staging (flag, key, wall, counter, node, value) FROM STDIN"
# Joins by hash in memory rather than sorts on disk (this transaction only).
MERGE_PLAN = """
SET LOCAL work_mem = '64MB'; SET LOCAL jit = off; SET LOCAL enable_mergejoin = off;
ANALYZE pg_temp.rollout_staging
"""
# One join of the copy with the registers: the keys stored already leave the copy, and those
# of them that beat the stored register replace it (an index lookup each: a re-seed, which
# beats nothing, costs one join). Returns how many were replaced.
UPDATE_FROM_STAGING = """
WITH stored AS (
    DELETE FROM pg_temp.rollout_staging AS s
    USING registers AS r WHERE r.flag = s.flag AND r.key = s.key
    RETURNING s.flag, s.key, s.wall, s.counter, s.node, s.value,
        (s.wall, s.counter, s.node, s.value) > (r.wall, r.counter, r.node, r.value) AS newer
), replaced AS (
    UPDATE registers AS r
    SET wall = s.wall, counter = s.counter, node = s.node, value = s.value
    FROM stored AS s
    WHERE s.newer AND r.flag = s.flag AND r.key = s.key
    RETURNING 1
)
SELECT count(*) FROM replaced
"""
# Which of a big save's flags have a register stored: those that have none (a merge into an
# empty store, a new flag's users) are copied straight into the registers, as nothing stored can
# beat them. Asked after the version row is locked: no writer inserts a register until commit.
STORED_FLAGS = """
SELECT given.flag FROM unnest(%s::text[]) AS given(flag)
WHERE EXISTS (SELECT FROM registers AS r WHERE r.flag = given.flag COLLATE "C")
"""
COPY_REGISTERS = "COPY registers (flag, key, wall, counter, node, value) FROM STDIN"
INSERT_FROM_STAGING = """
INSERT INTO registers (flag, key, wall, counter, node, value)
SELECT flag, key, wall, counter, node, value FROM pg_temp.rollout_staging
"""

PUT_CHANGE = "INSERT INTO changes (version, origin, delta) VALUES (%s, %s, %s)"
TRIM_CHANGES = "DELETE FROM changes WHERE version <= %s"
GET_CHANGE = "SELECT delta FROM changes WHERE version = %s"
NOTIFY = "SELECT pg_notify(%s, %s)"
