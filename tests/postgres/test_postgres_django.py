"""The Django example on one PostgreSQL database for its own tables and its flags."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rollout.testing.cluster import free_port

from ..integrations.example_servers import (
    EXAMPLES,
    Server,
    check_the_example,
    python,
    seed,
    serve,
)
from .pg_fixtures import pg_url  # noqa: F401  (fixtures)

SITE = EXAMPLES / "django_site"


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:  # noqa: F811
    """A database of this test's own, as the project's would be: the URL of it."""
    name = f"rollout_django_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_url.split("?", 1)[0].rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def django_on_postgres(database: str, tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, "SHOP_DATABASE_URL": database}
    env.pop("ROLLOUT_STORE", None)
    migrate = subprocess.run(
        python("manage.py", "migrate", "--verbosity", "0"),
        cwd=SITE, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    store = f"{database}?schema=rollout"
    seed(store)
    port = free_port()
    command = python("manage.py", "runserver", f"127.0.0.1:{port}", "--noreload")
    log = tmp_path / "runserver.log"
    with serve(command, port=port, env=env, cwd=SITE, log_path=log, store=store, peer="") as server:
        yield server


def test_the_django_example_keeps_its_tables_and_flags_in_one_postgresql_database(
    django_on_postgres: Server, database: str
) -> None:
    check_the_example(django_on_postgres)
    with psycopg.connect(database) as connection:
        tables = {
            (str(schema), str(table))
            for schema, table in connection.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            )
        }
    assert ("public", "auth_user") in tables  # Django's
    assert ("rollout", "registers") in tables  # the flags'
