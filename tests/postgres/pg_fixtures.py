"""Fixtures for the PostgreSQL tests: the machine's PostgreSQL, a schema of each test's own.

Test modules import them (a ``conftest.py`` here would clash with ``tests/conftest.py`` for
mypy, since the test folders are not packages).

* ``pg_url``: ``POSTGRES_URL`` when set, else ``postgresql://postgres@127.0.0.1:5432/test``;
  unreachable, the tests skip locally and fail under ``CI=true``.
* ``schema``: a schema no other test uses, dropped afterwards.
* ``admin``: a plain psycopg connection, to look at what the library wrote and to end its
  connections (``pg_terminate_backend``).
* ``store``: a :class:`PostgresStore` on ``schema``, closed afterwards (before the schema is
  dropped).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import psycopg
import pytest

from rollout.postgres import PostgresStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def need_postgres(reason: str) -> NoReturn:
    """No PostgreSQL can be had: skip locally, fail under CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("POSTGRES_URL") or DEFAULT_URL
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        need_postgres(f"PostgreSQL at {url} is not reachable: {exc}")
    return url


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    connection = psycopg.connect(pg_url, autocommit=True)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    name = f"rollout_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def store(pg_url: str, schema: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(pg_url, schema=schema)
    try:
        yield opened
    finally:
        opened.close()


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def terminate(admin: psycopg.Connection[Any], schema: str, purpose: str = "%") -> int:
    """End the library's server connections on ``schema`` (``purpose``: store, listen, or all):
    how many were ended. They are told by their application_name, rollout:<schema>:<purpose>."""
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s",
        [f"rollout:{schema}:{purpose}"],
    ).fetchall()
    return sum(1 for (ended,) in rows if ended)
