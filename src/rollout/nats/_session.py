"""The NATS transport's work on its event loop: connect, follow the stream, publish, compact.

One connection at a time (nats-py's own reconnect is off: after any failure the loop makes a
new connection and resumes, so there is one recovery path, tested). In a connection:

* The stream ``ROLLOUT_<namespace>`` is made if missing (``allow_rollup_hdrs``, messages at most
  ``max_message_bytes``).
* An ephemeral consumer delivers the stream from the message after the last one merged here (the
  whole stream the first time). Each message's consumer sequence must be the next one: a gap (a
  message dropped on the way, a slow consumer) ends the connection and the next one resumes from
  the last merged stream sequence, so nothing is skipped.
* Every ``check_interval`` the stream's last sequence is compared with the last one merged
  (stuck: resume) and its creation time with the one seen (a stream deleted or made again, or a
  NATS restarted without its storage: read it whole again).
* After reading the stream whole, what this replica has that the stream lacks (a store of its
  own, writes from before the stream was lost) is published, so the stream converges too.
* Compaction: when a flag's subject holds ``compact_after`` messages since its last rollup, the
  process whose own message reached that count publishes the flag's whole state with
  ``Nats-Rollup: sub`` and ``Nats-Expected-Last-Subject-Sequence`` (it has merged every message
  before it, and a concurrent write makes the rollup fail rather than be purged). A flag whose
  state does not fit one message, or of which this replica refused registers (quarantined), is
  not compacted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any, cast

from .._core.redact import scrub
from .._core.state import Delta, wins
from ..errors import FormatError
from ..sync._base import SyncHost
from ._options import HEADER_ROOM, NatsOptions
from ._outbox import Outbox
from ._wire import (
    ORIGIN,
    ROLLUP,
    decode_message,
    flag_of_subject,
    flag_subject,
    split_flag,
    stream_name,
    subject_prefix,
)

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["Replicator"]

logger = logging.getLogger("rollout.nats")


class _ResumeError(Exception):
    """End this connection and resume from the last merged message at once (no back-off)."""


class Replicator:
    def __init__(self, options: NatsOptions, host: SyncHost, outbox: Outbox) -> None:
        self.options = options
        self.host = host
        self.outbox = outbox
        self.prefix = subject_prefix(options.namespace)
        self.stream = stream_name(options.namespace)
        self.counters = dict.fromkeys(
            (
                "messages_received",
                "messages_published",
                "malformed",
                "gaps",
                "full_reads",
                "reconnects",
                "rollups",
                "errors",
                "too_large",
            ),
            0,
        )
        self.last_error: str | None = None
        self.applied = 0  # the stream sequence of the last message merged here
        self._created: object = None  # the stream's creation time when last read whole
        self._since_rollup: dict[str, int] = {}
        self._refused: set[str] = set()  # flags with registers refused since their rollup
        #: Per flag: the stream sequence of the last message on its subject, and whether it
        #: was this node's.
        self._last_on: dict[str, tuple[int, bool]] = {}
        self._wake = asyncio.Event()
        self._dropped = False  # nats-py dropped messages of this connection's consumer
        self._view: Delta | None = None
        self._limit = options.max_message_bytes

    # The reconnect loop -----------------------------------------------------------------------

    async def run(self) -> None:
        delay = 0.05
        loop = asyncio.get_running_loop()
        self.outbox.wake = lambda: _call_soon(loop, self._wake.set)
        while True:
            try:
                await self._connection()
                delay = 0.05
            except _ResumeError as why:
                logger.info("NATS %s: %s; resuming", self.stream, why)
            except Exception as exc:  # any failure: back off, reconnect, resume
                self.counters["errors"] += 1
                self.last_error = scrub(f"{type(exc).__name__}: {exc}", *self.options.servers)
                logger.warning(
                    "NATS %s: %s; reconnecting in %.2f s", self.stream, self.last_error, delay
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
            finally:
                self.outbox.set_connected(False)
            self.counters["reconnects"] += 1

    async def _connection(self) -> None:
        from nats.aio.client import Client

        nc = Client()
        try:
            await self._connect(nc)
        except BaseException:
            await _discard(nc)
            raise
        tasks: list[asyncio.Task[None]] = []
        try:
            js = nc.jetstream(timeout=max(self.options.connect_timeout, 2.0))
            await self._ensure_stream(nc, js)
            tasks = [
                asyncio.create_task(self._follow(nc, js)),
                asyncio.create_task(self._publish_loop(js)),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended it
            raise ConnectionError("the connection ended")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await _discard(nc)

    async def _connect(self, nc: Client) -> None:
        await nc.connect(
            servers=list(self.options.servers),
            allow_reconnect=False,
            # Typed int by nats-py, used as asyncio.wait_for's seconds: a float works.
            connect_timeout=cast(int, self.options.connect_timeout),
            # A link that stops answering (no reset, no FIN) is found by two missed pings.
            ping_interval=max(1, int(self.options.check_interval)),
            max_outstanding_pings=2,
            error_cb=self._on_error,
            **self.options.connect,
        )

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports here what it then acts on (a closed socket, a stale connection): the
        # reconnect loop logs the outcome; this keeps the text, without credentials.
        from nats.errors import SlowConsumerError

        self.last_error = scrub(f"{type(exc).__name__}: {exc}", *self.options.servers)
        logger.debug("NATS client: %s", self.last_error)
        if isinstance(exc, SlowConsumerError):
            # Messages were dropped in this process (more than max_pending waited): resume
            # now rather than when the next message or the periodic check shows the gap.
            self._dropped = True

    async def _ensure_stream(self, nc: Client, js: JetStreamContext) -> None:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        self._limit = min(self.options.max_message_bytes, nc.max_payload) - HEADER_ROOM
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            info = await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    allow_rollup_hdrs=True,
                    storage=StorageType.FILE,
                    max_msg_size=self.options.max_message_bytes,
                    num_replicas=self.options.stream_replicas,
                )
            )
        if info.created != self._created or info.state.last_seq < self.applied:
            # New to this process, or not the stream this replica followed: read it whole.
            if self._created is not None:
                logger.warning("NATS stream %s was made anew: reading it whole", self.stream)
            self._created = info.created
            self._forget_stream()

    def _forget_stream(self) -> None:
        """Read the stream from its first message at the next connection."""
        self.applied = 0
        # What the stream holds, gathered while it is read whole (over several connections if
        # one is cut short), to publish after it what this replica has and the stream lacks.
        self._view = {}
        self._since_rollup.clear()
        self._refused.clear()
        self._last_on.clear()

    # Following the stream ---------------------------------------------------------------------

    async def _follow(self, nc: Client, js: JetStreamContext) -> None:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        start = self.applied + 1
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL if start == 1 else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if start == 1 else start,
            # A consumer left behind by a cut connection is removed by the server.
            inactive_threshold=max(30.0, 3 * self.options.check_interval),
            mem_storage=True,
        )
        self._dropped = False
        sub = await js.subscribe(
            f"{self.prefix}.>",
            stream=self.stream,
            config=config,
            pending_msgs_limit=self.options.max_pending,
        )
        try:
            # Caught up once the stream's last message (as of now) is merged. Not the
            # consumer's num_pending: the server may have pushed everything already, so it
            # reads 0 while the messages still wait in this process's queue.
            info = await js.stream_info(self.stream)
            target = info.state.last_seq if info.state.messages else 0
            caught_up = self.applied >= target
            expected = 1
            last_check, stuck = self.applied, False
            next_check = asyncio.get_running_loop().time() + self.options.check_interval
            while True:
                if caught_up and not self.outbox.connected:
                    self._catch_up_done()
                if nc.is_closed:
                    raise ConnectionError("the connection to NATS closed")
                if self._dropped:
                    self.counters["gaps"] += 1
                    raise _ResumeError("messages were dropped here (more than max_pending)")
                now = asyncio.get_running_loop().time()
                if now >= next_check:
                    next_check = now + self.options.check_interval
                    stuck = await self._check(js, last_check, stuck)
                    last_check = self.applied
                try:
                    msg = await sub.next_msg(timeout=min(0.5, self.options.check_interval))
                except NatsTimeout:
                    continue
                metadata = msg.metadata
                if metadata.sequence.consumer != expected:
                    self.counters["gaps"] += 1
                    raise _ResumeError(
                        f"message {expected} of the consumer was lost "
                        f"(got {metadata.sequence.consumer})"
                    )
                expected += 1
                await self._receive(js, msg, metadata.sequence.stream)
                self.applied = max(self.applied, metadata.sequence.stream)
                if metadata.num_pending == 0 or self.applied >= target:
                    caught_up = True
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _catch_up_done(self) -> None:
        view, self._view = self._view, None
        if view is not None:
            self.counters["full_reads"] += 1
            missing: Delta = {}
            for name, registers in self.host.replicated().items():
                theirs = view.get(name, {})
                for key, register in registers.items():
                    if wins(register, theirs.get(key)):
                        missing.setdefault(name, {})[key] = register
            if missing:
                self.outbox.put(missing)
        self.outbox.set_connected(True)

    async def _check(self, js: JetStreamContext, last_check: int, stuck: bool) -> bool:
        """The periodic check; returns whether the stream is ahead of this replica."""
        self.host.check_clock_step()
        info = await js.stream_info(self.stream)
        if info.created != self._created or info.state.last_seq < self.applied:
            raise _ResumeError(f"the stream {self.stream} was made anew")
        for name in [n for n, (_, ours) in self._last_on.items() if ours]:
            await self._compact(js, name)
        ahead = info.state.last_seq > self.applied
        if ahead and stuck and self.applied == last_check:
            self.counters["gaps"] += 1
            raise _ResumeError("messages of the stream stopped arriving")
        return ahead

    async def _receive(self, js: JetStreamContext, msg: Msg, sequence: int) -> None:
        self.counters["messages_received"] += 1
        headers = msg.headers or {}
        try:
            delta = decode_message(self.prefix, msg.subject, msg.data)
        except FormatError as exc:
            self.counters["malformed"] += 1
            logger.warning(
                "NATS %s: dropped message %d on %s, not a rollout change: %s",
                self.stream,
                sequence,
                msg.subject,
                exc,
            )
            return
        name = flag_of_subject(self.prefix, msg.subject)
        assert name is not None  # decode_message checked the subject
        if headers.get(ROLLUP):
            self._since_rollup[name] = 0
            self._refused.discard(name)
        else:
            self._since_rollup[name] = self._since_rollup.get(name, 0) + 1
        view = self._view
        if view is not None:
            for flag, registers in delta.items():
                mine = view.setdefault(flag, {})
                for key, register in registers.items():
                    if wins(register, mine.get(key)):
                        mine[key] = register
        if delta and self.host.merge_from_peer(delta):
            self._refused.add(name)
        self._last_on[name] = (sequence, headers.get(ORIGIN) == self._origin)
        await self._compact(js, name)

    async def _compact(self, js: JetStreamContext, name: str) -> None:
        """Roll the flag's subject up if it is due and the last message on it is this node's
        (so one process tries, not the fleet); after a rollup refused because another write
        came in, the periodic check tries again."""
        sequence, ours = self._last_on.get(name, (0, False))
        if (
            ours
            and self._since_rollup.get(name, 0) >= self.options.compact_after
            and name not in self._refused
        ):
            await self._rollup(js, name, sequence)

    async def _rollup(self, js: JetStreamContext, name: str, sequence: int) -> None:
        from nats.js.errors import APIError

        bodies, too_large = split_flag(
            name, self.host.replicated([name]).get(name, {}), self._limit
        )
        if len(bodies) != 1 or too_large:
            return  # larger than one message: the flag's subject is not compacted
        headers = {
            ORIGIN: self._origin,
            ROLLUP: "1",
            "Nats-Rollup": "sub",
            "Nats-Expected-Last-Subject-Sequence": str(sequence),
        }
        try:
            await js.publish(flag_subject(self.prefix, name), bodies[0], headers=headers)
        except APIError as exc:  # a write came in after `sequence`: its writer compacts later
            logger.debug("NATS %s: rollup of %r not made: %s", self.stream, name, exc)
            return
        self.counters["rollups"] += 1

    @property
    def _origin(self) -> str:
        return f"{self.host.node_id:016x}"

    # Publishing local writes ------------------------------------------------------------------

    async def _publish_loop(self, js: JetStreamContext) -> None:
        while True:
            # Cleared before taking: a change put after the take sets it again. The first
            # round runs at once, for what waited while NATS was away.
            self._wake.clear()
            delta, upto = self.outbox.take()
            try:
                for name, registers in delta.items():
                    await self._publish_flag(js, name, registers)
            except BaseException:
                self.outbox.put_back(delta)
                raise
            self.outbox.sent(upto)
            await self._wake.wait()

    async def _publish_flag(self, js: JetStreamContext, name: str, registers: Any) -> None:
        bodies, too_large = split_flag(name, registers, self._limit)
        if too_large:
            self.counters["too_large"] += len(too_large)
            logger.error(
                "NATS %s: registers %s of flag %r are larger than one message (%d bytes) and "
                "were not sent; raise max_message_bytes (and the server's max_payload)",
                self.stream,
                too_large,
                name,
                self._limit,
            )
        subject = flag_subject(self.prefix, name)
        for body in bodies:
            await js.publish(subject, body, headers={ORIGIN: self._origin})
            self.counters["messages_published"] += 1


async def _discard(nc: Client) -> None:
    """Close a client, also one whose connect failed: nats-py then counts it closed already and
    its ``close()`` returns without closing the socket it opened (asyncio would warn of the
    unclosed stream when it is collected), so that one is closed here."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 2.0)
    transport = getattr(nc, "_transport", None)  # nats-py's, not public
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()
            await asyncio.wait_for(transport.wait_closed(), 1.0)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: the transport is closing
        loop.call_soon_threadsafe(callback)
