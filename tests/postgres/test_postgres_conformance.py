"""The PostgreSQL store and transport pass the shared conformance suites, each test in a schema
of its own on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout import Store
from rollout.postgres import PostgresStore, PostgresTransport
from rollout.sync import Transport
from rollout.testing import PartitionConformance, StoreConformance
from rollout.testing.proxy import FaultProxy

from .pg_fixtures import pg_url, schema, with_schema  # noqa: F401  (fixtures)


class TestPostgresStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_url: str, schema: str) -> None:  # noqa: F811
        self.url = with_schema(pg_url, schema)

    def make_store(self) -> Store:
        return PostgresStore.from_url(self.url)

    def reopen(self, store: Store) -> Store:
        return PostgresStore.from_url(self.url)


class TestPostgresTransport(PartitionConformance):
    """A PostgresTransport on its own (``Rollout(transport=...)``, no store in the Rollout).

    Each transport reaches PostgreSQL through a proxy of its own, so that isolate() can cut it.
    """

    deadline = 15.0

    @pytest.fixture(autouse=True)
    def _postgres(self, pg_url: str, schema: str) -> Iterator[None]:  # noqa: F811
        self.url = with_schema(pg_url, schema)
        self.stores: list[PostgresStore] = []
        self.proxies: list[FaultProxy] = []  # those of the latest make_transports()
        self.all_proxies: list[FaultProxy] = []
        yield
        for store in self.stores:
            store.close()
        for proxy in self.all_proxies:
            proxy.close()

    def make_transports(self, count: int) -> list[Transport]:
        host_port = self.url.split("://", 1)[1].split("@", 1)[-1].split("/", 1)[0]
        self.proxies = []  # isolate() numbers the latest transports
        transports: list[Transport] = []
        for _ in range(count):
            proxy = FaultProxy(host_port).start()
            self.proxies.append(proxy)
            self.all_proxies.append(proxy)
            store = PostgresStore.from_url(self.url.replace(host_port, proxy.address, 1))
            self.stores.append(store)
            transports.append(PostgresTransport(store, check_interval=1.0))
        return transports

    def isolate(self, index: int) -> None:
        self.proxies[index].cut()

    def heal(self) -> None:
        for proxy in self.proxies:
            proxy.heal()
