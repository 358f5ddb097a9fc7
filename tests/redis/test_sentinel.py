"""Redis behind Sentinel: a ``redis+sentinel://`` URL, a Sentinel-managed client passed in, and a
write that still goes through after a failover.

Each test starts its own master (``redis_server.RedisServer``) and one Sentinel process watching
it, on free loopback ports; without a ``redis-server`` binary they skip locally and fail under
``CI=true``, like the other Redis tests.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import redis.sentinel

from rollout import Rollout
from rollout.errors import StoreOutcomeUnknownError, StoreUnavailableError
from rollout.redis import RedisStore
from rollout.testing import eventually
from rollout.testing.cluster import free_port

from .redis_server import RedisServer, need_redis, redis_binary

_SERVICE = "mymaster"
_DEADLINE = 15.0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class SentinelProcess:
    """One ``redis-server --sentinel`` on a free loopback port, monitoring ``mymaster``."""

    def __init__(
        self, binary: str, directory: Path, master_port: int, auth_pass: str | None = None
    ) -> None:
        self.port = free_port()
        self.master_port = master_port
        self.config = directory / f"sentinel-{self.port}.conf"
        self.log_path = directory / f"sentinel-{self.port}.log"
        # Sentinel rewrites its config file (what it learns), so it must be a writable file.
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {directory}\n"
            f"logfile {self.log_path}\n"
            f"sentinel monitor {_SERVICE} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {_SERVICE} 1000\n"
            f"sentinel failover-timeout {_SERVICE} 10000\n"
            + (f"sentinel auth-pass {_SERVICE} {auth_pass}\n" if auth_pass else "")
        )
        self.process = subprocess.Popen(
            [binary, str(self.config), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def master_port_reported(self) -> int | None:
        """The master's port as this Sentinel reports it (None while it cannot answer)."""
        client = self.client()
        try:
            # The raw command: redis-py's wrapper changed its signature between 5 and 6.
            address = client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", _SERVICE
            )
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()
        return int(address[1]) if isinstance(address, list | tuple) and len(address) == 2 else None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _DEADLINE
        while self.master_port_reported() != self.master_port:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_text() if self.log_path.exists() else "(no log)"
                raise RuntimeError(f"Sentinel on port {self.port} did not see the master:\n{log}")
            time.sleep(0.05)

    def url(self, namespace: str, db: int = 0, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"redis+sentinel://{at}127.0.0.1:{self.port}/{_SERVICE}/{db}?namespace={namespace}"

    def stop(self) -> None:
        _stop(self.process)


@pytest.fixture
def binary() -> str:
    found = redis_binary()
    if found is None:
        need_redis("no redis-server binary to start a Redis master and a Sentinel")
    return found


@pytest.fixture
def master(binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(binary, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sentinel(binary: str, tmp_path: Path, master: RedisServer) -> Iterator[SentinelProcess]:
    process = SentinelProcess(binary, tmp_path, master.port)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace() -> str:
    return f"rollout-test-{uuid.uuid4().hex[:12]}"


def _on_port(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)


@contextmanager
def _sentinel_store(sentinel: SentinelProcess, namespace: str) -> Iterator[RedisStore]:
    """A RedisStore on a Sentinel-managed client built by hand (not from a URL).

    A Rollout leaves a store passed in open: this closes it, and the Sentinel's own clients.
    """
    manager = redis.sentinel.Sentinel([("127.0.0.1", sentinel.port)], socket_timeout=5)
    client: redis.Redis = manager.master_for(_SERVICE)
    store = RedisStore(client, namespace=namespace)
    try:
        yield store
    finally:
        store.close()
        for sentinel_client in manager.sentinels:
            sentinel_client.close()


def _see_each_others_writes(first: Rollout, second: Rollout, master_port: int, ns: str) -> None:
    assert first.wait_synced(10)
    assert second.wait_synced(10)
    first.activate_user("chat", 42)
    second.set_feature_data("chat", {"owner": "web"})
    for flags in (first, second):
        eventually(lambda f=flags: f.active("chat", 42), _DEADLINE, "user 42 everywhere")  # type: ignore[misc]
        eventually(
            lambda f=flags: f.get("chat").data == {"owner": "web"},  # type: ignore[misc]
            _DEADLINE,
            "the data everywhere",
        )
    assert first.export() == second.export()
    direct = _on_port(master_port)
    try:
        assert direct.smembers(f"{ns}:flags") == {"chat"}
        assert direct.hget(f"{ns}:flag:chat", "user:42") is not None
    finally:
        direct.close()


def test_two_rollouts_on_one_sentinel_url_share_the_master(
    sentinel: SentinelProcess, master: RedisServer, namespace: str
) -> None:
    url = sentinel.url(namespace)
    with Rollout(url) as first, Rollout(url) as second:
        _see_each_others_writes(first, second, master.port, namespace)


def test_a_sentinel_managed_client_passed_in_works_the_same(
    sentinel: SentinelProcess, master: RedisServer, namespace: str
) -> None:
    with (
        _sentinel_store(sentinel, namespace) as store,
        _sentinel_store(sentinel, namespace) as store_too,
        Rollout(store) as first,
        Rollout(store_too) as second,
    ):
        _see_each_others_writes(first, second, master.port, namespace)


def test_a_url_and_a_client_passed_in_see_each_other(
    sentinel: SentinelProcess, master: RedisServer, namespace: str
) -> None:
    with (
        _sentinel_store(sentinel, namespace) as store,
        Rollout(sentinel.url(namespace)) as first,
        Rollout(store) as second,
    ):
        _see_each_others_writes(first, second, master.port, namespace)


def _replica_known(sentinel: SentinelProcess, replica_port: int) -> bool:
    client = sentinel.client()
    try:
        replicas = client.sentinel_slaves(_SERVICE)
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    assert isinstance(replicas, list)
    return any(
        int(info["port"]) == replica_port
        and info["flags"] == "slave"
        and info.get("master-link-status") == "ok"
        for info in replicas
    )


def _write_until_it_succeeds(flags: Rollout, name: str) -> None:
    deadline = time.monotonic() + _DEADLINE
    while True:
        try:
            flags.activate(name)
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SENTINEL FAILOVER", "the master dies"])
def test_writes_go_to_the_new_master_after_a_failover(
    binary: str, tmp_path: Path, master: RedisServer, namespace: str, how: str
) -> None:
    setup = _on_port(master.port)
    try:  # no 5 s pause before the replica's first sync
        setup.config_set("repl-diskless-sync-delay", 0)
    finally:
        setup.close()
    replica_port = free_port()
    replica = subprocess.Popen(
        [
            binary, "--port", str(replica_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
            "--logfile", str(tmp_path / f"replica-{replica_port}.log"),
            "--replicaof", "127.0.0.1", str(master.port),
            # Once promoted, it would wait for its own lagging replica before shutting down.
            "--shutdown-timeout", "0", "--repl-diskless-sync-delay", "0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sentinel: SentinelProcess | None = None
    try:
        # The replica is linked before Sentinel starts, so Sentinel's first look at the master
        # lists it (it otherwise asks the master again only every 10 s).
        eventually(lambda: _link_up(replica_port), _DEADLINE, "the replica linked to the master")
        sentinel = SentinelProcess(binary, tmp_path, master.port)
        sentinel.wait_ready()
        eventually(
            lambda: _replica_known(sentinel, replica_port), _DEADLINE, "Sentinel sees the replica"
        )
        url = sentinel.url(namespace)
        with Rollout(url) as first, Rollout(url) as second:
            assert first.wait_synced(10)
            assert second.wait_synced(10)
            first.activate("before")
            eventually(lambda: second.active("before"), _DEADLINE, "the first write seen")
            eventually(
                lambda: _on_port_members(replica_port, namespace) == {"before"},
                _DEADLINE,
                "replicated",
            )
            if how == "the master dies":
                master.stop()
            else:
                sentinel_client = sentinel.client()
                try:
                    assert sentinel_client.sentinel_failover(_SERVICE)
                finally:
                    sentinel_client.close()
            eventually(
                lambda: sentinel.master_port_reported() == replica_port,
                _DEADLINE,
                "the replica promoted",
            )
            _write_until_it_succeeds(first, "after")
            eventually(
                lambda: second.active("after"), _DEADLINE, "the write after the failover seen"
            )
            assert second.active("before")
            # After SENTINEL FAILOVER the old master keeps taking writes until Sentinel demotes
            # it (its next look, up to 10 s later), and its resync from the new master drops
            # them: "after" reaches the new master only when Sentinel, demoting it, kills its
            # clients and the transports reconnect and re-seed Redis from their replicas.
            eventually(
                lambda: _on_port_members(replica_port, namespace) == {"before", "after"},
                _DEADLINE,
                "the new master holds every flag",
            )
    finally:
        if sentinel is not None:
            sentinel.stop()
        _stop(replica)


def _on_port_members(port: int, namespace: str) -> set[str]:
    client = _on_port(port)
    try:
        return client.smembers(f"{namespace}:flags")  # type: ignore[return-value]
    finally:
        client.close()


def _link_up(port: int) -> bool:
    client = _on_port(port)
    try:
        return bool(client.info("replication").get("master_link_status") == "up")
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def test_closing_a_store_from_a_sentinel_url_closes_its_sentinel_connections(
    sentinel: SentinelProcess, namespace: str
) -> None:
    def clients_named(name: str) -> int:
        with sentinel.client() as admin:
            return sum(1 for c in admin.client_list() if c.get("name") == name)

    store = RedisStore.from_url(sentinel.url(namespace))
    try:
        # Name our sentinel connections so they can be told apart from the test's own.
        for connection in store._owned:
            connection.client_setname("rollout-under-test")
        assert store.version() == 0  # talks to the master found through the sentinel
        assert clients_named("rollout-under-test") >= 1
    finally:
        store.close()
    eventually(
        lambda: clients_named("rollout-under-test") == 0, _DEADLINE, "sentinel connections closed"
    )


def test_a_write_to_a_hung_master_is_an_unknown_outcome_and_lands_later(
    sentinel: SentinelProcess, master: RedisServer, namespace: str
) -> None:
    # A sentinel URL takes no socket_timeout=: the store's own holds for the master's
    # connections too (redis-py before 8 has none, and the write would wait for the master).
    with Rollout(sentinel.url(namespace)) as flags:
        flags.activate_user("chat", "before")
        # Its subscriber's first connection may re-seed through the save connection: done before
        # the hang (tests/redis/test_redis_hang.py says why).
        assert flags.wait_synced(30.0)
        with master.hung(), pytest.raises(StoreOutcomeUnknownError):
            flags.activate_user("chat", "during")
        eventually(lambda: flags.active("chat", "during"), 30, "the late write reaches the replica")


@pytest.mark.parametrize("userinfo", [":hunter%2F2", "default:hunter%2F2"])
def test_the_password_of_a_sentinel_url_reaches_the_master(
    binary: str, tmp_path: Path, master: RedisServer, namespace: str, userinfo: str
) -> None:
    """The master has ``requirepass``; its Sentinel has none (the usual set-up)."""
    password = "hunter/2"  # percent-encoded in the URL, as a URL must carry a "/"
    with _on_port(master.port) as setup:
        setup.config_set("requirepass", password)
    sentinel = SentinelProcess(binary, tmp_path, master.port, auth_pass=password)
    try:
        sentinel.wait_ready()
        url = sentinel.url(namespace, userinfo=userinfo)
        with Rollout(url) as flags, Rollout(url) as other:
            flags.activate("chat")
            assert flags.active("chat")
            # The other one hears of it: its subscriber authenticated to the master too.
            eventually(lambda: other.active("chat"), _DEADLINE, "the write seen elsewhere")
            assert other.stats()["sync"]["connected"]
        direct = redis.Redis(
            host="127.0.0.1", port=master.port, password=password, decode_responses=True
        )
        with direct:
            assert direct.smembers(f"{namespace}:flags") == {"chat"}
    finally:
        sentinel.stop()


@pytest.mark.parametrize("query", ["password=hunter2", "socket_timeout=1&namespace=app"])
def test_a_sentinel_url_refuses_parameters_it_would_ignore(query: str) -> None:
    """Only ``namespace`` is read from a sentinel URL: a ``password=`` was silently dropped."""
    url = f"redis+sentinel://127.0.0.1:26379/mymaster?{query}"
    with pytest.raises(ValueError, match="a sentinel URL takes no") as raised:
        Rollout(url)
    assert "hunter2" not in str(raised.value)
    assert "namespace" in str(raised.value)
