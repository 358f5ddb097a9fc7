"""A store in Redis: one place shared by processes on many machines (and by Ruby services).

Layout under a namespace ``ns`` (the Ruby gem needed redis-namespace for this):

* ``ns:flags`` — a set of flag names (the index);
* ``ns:flag:<name>`` — a hash per flag: register key -> packed register (history events too);
* ``ns:history:<name>`` — a sorted set of the flag's history event keys (all at score 0, so in
  timestamp order: trimming to the history limit never scans the hash);
* ``ns:version`` — a counter bumped by every save that changed something;
* ``ns:changes`` — the pub/sub channel every such save publishes its delta on (a big one, a
  word instead: rollout.redis._chunks);
* ``ns:quarantine:held``, ``ns:quarantine:judged``, ``ns:quarantine:seq`` — the quarantine
  (rollout.redis._quarantine);
* ``ns:ruby:mirror`` — with ``ruby_compat=True``, the gem's records as last written
  (rollout.redis._ruby_mirror).

Each hash field holds a packed register (rollout.redis._packed): comparing two packed strings
compares ``(timestamp, value)``, exactly the last-writer-wins rule. One Lua script merges a whole
delta, drops what a watermark hides (in a big flag the writer does it after, in steps:
rollout.redis._collect), records history, bumps the version and publishes, atomically: two
processes adding different users to one flag at the same moment both keep their user.
A write is one round trip: EVALSHA of that cached script, on a connection the store keeps
for its saves, with each register sent once and the change's JSON built from the same encoding,
the command written in Redis's wire format in one pass (rollout.redis._saver).
A merge (an import, a re-seed), and a write of more than a chunk's registers, is saved in
chunks of such scripts (:meth:`RedisStore.merge_numbered`), and the whole store is read in pages
(rollout.redis._load).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .._core.clock import Timestamp
from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
from .._core.redact import redact_url, scrub
from .._core.state import Delta
from ..errors import (
    ClosedError,
    PartlyStoredError,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    require_extra,
)
from ..stores._base import Store
from ._chunks import (
    CHUNK,
    DONE,
    NOTICE_BYTES,
    PARTIAL,
    RELOAD,
    chunk_command,
    reload_notice,
    split,
)
from ._collect import Collections
from ._load import Pages
from ._packed import PREFIX, pack, pack_flag, stamped_origin
from ._quarantine import RedisQuarantine
from ._saver import OneFlagCommands, SaveConnection, encode_command
from ._scripts import COLLECT, DISCARD, MERGE
from ._sentinel import sentinel_client
from ._transport import RedisTransport

logger = logging.getLogger("rollout.redis")

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

#: Seconds a store made from a URL waits for a connection, and for any answer, before it gives
#: up: a Redis that hangs is then an error (StoreOutcomeUnknownError for a write already sent)
#: rather than a caller and a subscriber that wait for ever. redis-py 8 waits 5 s by default;
#: the versions before it (5.0.1, the floor, to 7) have no time-out at all. The URL's
#: ``socket_timeout=`` and ``socket_connect_timeout=`` override it.
SOCKET_TIMEOUT = 5.0


class RedisStore(Store):
    """Registers in Redis under ``namespace``. Give a redis-py client, or use :meth:`from_url`.

    Every save that changes something also publishes its delta on ``<namespace>:changes``; the
    :class:`~rollout.redis.RedisTransport` (started by ``Rollout`` with this store) turns that
    into live updates in every process.
    """

    #: A local write of more registers than a merge's chunk is saved as a merge is, in chunks:
    #: one script of a million would hold every client of Redis for seconds.
    atomic_write_limit: int | None = CHUNK

    def __init__(self, client: redis.Redis, *, namespace: str = "rollout") -> None:
        if not namespace or any(c in namespace for c in "\r\n "):
            raise ValueError(f"namespace must be a non-empty word, got {namespace!r}")
        self.client = client
        self.namespace = namespace
        self.url = f"redis (namespace {namespace})"
        self.channel = f"{namespace}:changes"
        self.index_key = f"{namespace}:flags"
        self.version_key = f"{namespace}:version"
        self.flag_prefix = f"{namespace}:flag:"
        self.history_prefix = f"{namespace}:history:"
        #: Who published a change, in each message (for people reading the channel).
        self.origin = f"pid-{os.getpid()}"
        self._merge = client.register_script(MERGE)
        self._pages = Pages(client, self.index_key, self.version_key, self.flag_prefix)
        self._discard = client.register_script(DISCARD)
        self._collect = client.register_script(COLLECT)
        self._collections = Collections()
        self._quarantine = RedisQuarantine(client, namespace)
        self._lock = threading.Lock()
        self._closed = False
        self._owned: list[redis.Redis] = []
        #: The saves' client, on one connection of ``client``'s pool (redis._saver).
        self._saver = SaveConnection(client)
        self._one_flag = OneFlagCommands()

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://host:6379/0?namespace=myapp`` (also ``rediss://`` and ``unix://``), or
        ``redis+sentinel://host:26379,host2:26379/mymaster/0?namespace=myapp``."""
        require_extra("redis", "redis", "a redis:// store")
        import redis

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        namespace = query.pop("namespace", ["rollout"])[0]
        rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        sentinels: list[redis.Redis] = []
        try:
            if parts.scheme == "redis+sentinel":
                if query:  # redis-py's from_url options would be dropped without a word
                    raise ValueError(
                        f"a sentinel URL takes no {', '.join(sorted(query))!r} parameter (only "
                        "namespace; the master's password goes before the host: "
                        "redis+sentinel://:PASSWORD@host:26379/mymaster)"
                    )
                client, sentinels = sentinel_client(parts, SOCKET_TIMEOUT)
            else:
                client = redis.Redis.from_url(  # the URL's own options win over these
                    rest, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
                )
        except ValueError as exc:
            # redis-py's message may quote the URL or a part of it: scrubbed, and not chained
            # (a traceback prints the cause's text too).
            reason = scrub(exc, url)
            shown = redact_url(url)
            raise ValueError(f"store URL {shown!r} is not a Redis URL: {reason}") from None
        store = cls(client, namespace=namespace)
        store.url = redact_url(url)  # what it prints (serve's start-up line, stats()): no password
        store._owned = sentinels  # opened here, so closed with the store
        return store

    def default_transport(self) -> RedisTransport:
        # The replica saves its writes into this store, which publishes them: nothing to add.
        return RedisTransport(self, saves_writes=False)

    @contextmanager
    def _using(self, action: str, *, writes: bool = False) -> Iterator[None]:
        """Driver errors as StoreErrors (:meth:`_translated`); ClosedError once closed."""
        import redis

        if self._closed:
            raise ClosedError("this RedisStore is closed")
        try:
            yield
        except redis.RedisError as exc:
            raise self._translated(exc, action, writes) from exc

    def _translated(self, exc: redis.RedisError, action: str, writes: bool) -> StoreError:
        """A driver error as a StoreError. ``writes``: a lost answer is an unknown outcome.

        Redis runs a command it has received even when its answer never arrives (a server that
        hangs runs it when it resumes), so a write whose command was sent and whose answer timed
        out or was cut off is :class:`StoreOutcomeUnknownError`, never "nothing was written".
        Only a failure to connect, or to send, leaves the write unsent.
        """
        import redis

        if isinstance(exc, redis.BusyLoadingError):
            return StoreUnavailableError(f"cannot {action} Redis ({self.namespace}): {exc}")
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            if writes and _sent(exc):
                return StoreOutcomeUnknownError(
                    f"cannot {action} Redis ({self.namespace}): {exc}; the write was sent, so it "
                    "may or may not have happened (Redis may still carry it out): read the flag "
                    "back once Redis answers to know"
                )
            return StoreUnavailableError(f"cannot {action} Redis ({self.namespace}): {exc}")
        return StoreError(f"cannot {action} Redis ({self.namespace}): {exc}")

    def load(self) -> Delta:
        return self.snapshot()[0]

    def load_numbered(self) -> tuple[Delta, int | None]:
        return self.snapshot()

    def snapshot(self) -> tuple[Delta, int]:
        """Every register and the namespace's version, read together (rollout.redis._load)."""
        with self._using("read"):
            return self._pages.snapshot(self._damaged)

    def _damaged(self, name: bytes | str, exc: BaseException) -> None:
        # Damaged, or written by another program (Redis is shared: the Ruby gem, hand edits):
        # that flag is left out, loudly, and every other flag loads, as the Ruby mirror does
        # with a bad record. One foreign record must not stop every process from starting.
        # Never a half-read flag.
        logger.error(
            "Redis store %s: the record of flag %r is unreadable and left out: %.300s "
            "(HDEL the damaged field of the flag's hash; the replicas' next re-seed "
            "writes back what they hold)",
            self.namespace,
            _text(name, errors="backslashreplace"),
            exc,
        )

    def save(self, delta: Delta) -> None:
        self._save(delta, "")

    def merge(self, delta: Delta) -> None:
        self.merge_numbered(delta)

    def merge_numbered(self, delta: Delta) -> list[int]:
        """A join (an import, a re-seed) in chunks of at most :data:`CHUNK` registers, each one
        atomic script: one script of a million registers would block every client of Redis
        past their time-outs. Readers may see some chunks before the rest, a state the join
        passes through anyway. Chunks but the last announce ``partial``: a follower reloads
        once, at the last one's ``reload``, rather than once per chunk.

        Returns the versions its chunks produced (not those of other writers in between): the
        merging replica's transport skips them, as it holds all they changed already. A local
        write of more than a chunk's registers is saved here too (:attr:`atomic_write_limit`).
        A chunk that fails after the first raises PartlyStoredError: those before it stay
        stored, and the error names them (their registers and versions)."""
        chunks = list(split(delta, CHUNK))
        if len(chunks) == 1:
            return _produced(self._save(chunks[0], ""))  # announced with its registers if small
        versions = []
        for number, chunk in enumerate(chunks, 1):
            notice = RELOAD if number == len(chunks) else PARTIAL
            keys = [self.index_key, self.version_key]
            for name in chunk:
                keys += (self.flag_prefix + name, self.history_prefix + name)
            head = [self.channel, self.origin, notice, self.history_limit]
            command = chunk_command(self._merge.sha, keys, head, chunk)
            try:
                versions.append(self._run_command(command, MERGE))
            except StoreError as exc:
                if number == 1:  # nothing stored (or, unknown, this one chunk): one save's error
                    if isinstance(exc, StoreOutcomeUnknownError):
                        # Stored perhaps, and announced "partial": those it put behind read now.
                        self._announce_done(0)
                    raise
                raise self._partly_stored(exc, chunks, number, versions) from exc
        if versions and not versions[-1] and any(versions):
            self._announce_done(max(versions))
        return _produced(*versions)

    def _partly_stored(
        self, exc: StoreError, chunks: list[Delta], failed: int, versions: list[int]
    ) -> PartlyStoredError:
        """The error of a chunk after the first: those before it stay stored (a join needs no
        undoing). Followers that heard their ``partial`` are told ``done``, to read them now."""
        stored: Delta = {}
        for chunk in chunks[: failed - 1]:
            for name, registers in chunk.items():
                stored.setdefault(name, {}).update(registers)
        count = sum(map(len, stored.values()))
        total = count + sum(
            len(registers) for chunk in chunks[failed - 1 :] for registers in chunk.values()
        )
        produced = _produced(*versions)
        if produced:
            self._announce_done(max(produced))
        before = "part 1 (" if failed == 2 else f"parts 1 to {failed - 1} ("
        return PartlyStoredError(
            f"{str(exc).rstrip('.')}. It was part {failed} of {len(chunks)}, each atomic, of a "
            f"change too big for one script: {before}{count:,} of {total:,} registers) "
            f"{'is' if failed == 2 else 'are'} stored, no part after it was sent; the same "
            "change again stores it all",
            stored,
            total,
            produced,
        )

    def _announce_done(self, version: int) -> None:
        """The end of a merge whose last chunk changed nothing (so announced nothing): those
        that heard its ``partial`` chunks would otherwise wait for their periodic check. The
        merge is stored already: a failure here is only logged."""
        try:
            with self._using("announce a merge on", writes=False):
                self.client.publish(self.channel, f"{version} {self.origin} {DONE}")
        except StoreError as exc:
            logger.warning("%s; followers catch up at their next version check", exc)

    def _save(self, delta: Delta, notice: str) -> int:
        """One atomic save; ``notice``: announce it by that word instead of its registers.
        Returns the version it produced, 0 when it changed nothing."""
        keys = [self.index_key, self.version_key]
        args: list[Any] = [self.channel, self.origin, "", self.history_limit]
        flags_json = []
        stamps: set[Timestamp] = set()
        bulks: list[str] | None = [] if len(delta) == 1 else None
        for name, registers in delta.items():
            if registers:
                keys += (self.flag_prefix + name, self.history_prefix + name)
                args += (name, len(registers))
                flags_json.append(pack_flag(name, registers, args, stamps, bulks))
        if not flags_json:
            return 0
        args[1] = stamped_origin(self.origin, stamps)
        args[2] = notice or "{" + ",".join(flags_json) + "}"
        if len(args[2]) > NOTICE_BYTES:
            # Megabytes on the channel, to every subscriber: past Redis's pub/sub output limit
            # a slow one is cut off (and then saves and reloads everything). A word instead.
            args[2] = reload_notice(delta)
        if bulks is not None:
            command = self._one_flag.command(self._merge.sha, keys, args, bulks)
            if command is not None:
                return self._run_command(command, MERGE)
        return self._run(self._merge.sha, MERGE, keys, args)

    def _run(self, sha: str, script: str, keys: list[str], args: list[Any]) -> int:
        return self._run_command(encode_command(["EVALSHA", sha, len(keys), *keys, *args]), script)

    def _run_command(self, command: bytes, script: str) -> int:
        """Run an EVALSHA of ``script`` written in Redis's wire format; the script's reply.

        What ``_using("write to", writes=True)`` does, written out: a generator-made context
        manager is a tenth of the round trip's instructions, on every write."""
        if self._closed:
            raise ClosedError("this RedisStore is closed")
        try:
            try:
                reply = self._saver.run(command)
            except Exception as exc:
                import redis

                if not isinstance(exc, redis.exceptions.NoScriptError):
                    raise
                # Redis restarted or its scripts were flushed (what redis-py's Script does too):
                # the script did not run, so it is loaded and the save sent once more.
                with self._saver.client() as saver:
                    saver.script_load(script)
                reply = self._saver.run(command)
        except Exception as exc:
            import redis

            if not isinstance(exc, redis.RedisError):
                raise
            raise self._translated(exc, "write to", True) from exc
        if isinstance(reply, list):  # the version, then big hashes a moved watermark left to us
            self._collections.start(self._collect, reply[1:])
            return int(reply[0])
        return int(reply)

    def discard(self, delta: Delta) -> None:
        flags = [(name, registers) for name, registers in delta.items() if registers]
        if not flags:
            return
        keys: list[str] = []
        args: list[Any] = []
        for name, registers in flags:
            keys += [self.flag_prefix + name, self.history_prefix + name]
            args.append(len(registers))
            for key, register in registers.items():
                args += [key, pack(key, register)[:PREFIX]]
        with self._using("discard from", writes=True):
            self._discard(keys=keys, args=args)

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        with self._using("quarantine in", writes=True):
            self._quarantine.hold(entries, self.quarantine_limit, self.verdicts_kept)

    def quarantined(self) -> QuarantineState:
        with self._using("read"):
            return self._quarantine.read()

    def release(self, registers: Iterable[Judged]) -> None:
        with self._using("release from", writes=True):
            self._quarantine.release(registers, self.verdicts_kept)

    def ping(self) -> None:
        with self._using("reach"):
            self.client.ping()

    def version(self) -> int:
        with self._using("read"):
            return int(self.client.get(self.version_key) or 0)

    def close(self) -> None:
        self._close(None)

    def close_within(self, timeout: float) -> None:
        self._close(timeout)

    def _close(self, timeout: float | None) -> None:
        if not self._closed:
            self._closed = True
            self._collections.wait(timeout)  # on the client, which closes next
            self._saver.close()  # its connection back to the pool, which closes next
            self.client.close()
            for connection in self._owned:  # the Sentinel connections of a sentinel URL
                connection.close()


#: redis-py's functions that make a connection ready (the socket, then HELLO, AUTH, SELECT): an
#: error raised inside them came before the command was sent.
_CONNECTING = frozenset({"get_connection", "ensure_connection", "connect", "on_connect"})


def _produced(*versions: int) -> list[int]:
    """The versions a save produced (a script that changed nothing answers 0)."""
    return [version for version in versions if version > 0]


def _sent(exc: BaseException) -> bool:
    """Whether redis-py's error came while reading the command's answer (it had been sent).

    A new connection's handshake reads answers too ("Timeout reading from"), so where the error
    was raised decides first: inside redis-py's connecting, the command was never sent. Past
    that, "reading from" (a read timed out or failed) and "closed by server" (the connection
    ended while the answer was awaited) mean Redis may have received the whole command; any
    other error (sending failed, no master known to Sentinel) left it unsent.
    """
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name in _CONNECTING:
            return False
        traceback = traceback.tb_next
    message = str(exc)
    return "reading from" in message or "closed by server" in message


def _text(value: bytes | str, errors: str = "strict") -> str:
    return value.decode(errors=errors) if isinstance(value, bytes) else value
