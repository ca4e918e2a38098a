"""The worker's per-event work and batch life cycle (used by the thin Faust agent).

Events are applied one by one to the open batch (state changes and encoded updates kept in
memory). A batch is *sealed* when it is full, or older than ``within`` seconds once the previous
flush is done (a busy worker makes bigger batches): its updates are handed to the producer, in
event order, as one record batch per partition; then it is flushed in the background --
projection transaction and producer flush (updates acknowledged by Kafka), then its learners'
entries written to the table (one changelog write per learner per batch, acknowledged too), and
only then the acknowledgement of its events, so an offset is never committed before every
effect of its statement is durable, and the table never holds a statement whose projection or
updates are not. While a batch is flushed, the next one fills (reading the sealed batch's
entries until they are in the table): at most one flush is in flight and flushes run in order,
so the projection's watermarks only move forward. From a rebalance's start until Faust's table
recovery is complete the pipeline is held (:meth:`hold`, :meth:`release`): no flush in flight,
none sealed, so the recovery's replay of the changelog cannot overwrite an entry a flush wrote
with an older one (``shared.batching.consume_in_batches``).

Stopping (or crashing) loses nothing: events not acknowledged are delivered again; those the
table does not hold yet are simply recomputed, to the same rows and updates (the projection's
watermark skips the rows already committed); those it holds (acknowledged statements whose
offsets Faust had not committed yet: it commits every few seconds) are recognised by the source
offset kept in the learner's entry, however many there are (the ring of recent ids alone held
64 and let older ones count twice), and their effects are all durable already.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.projection import Projector
from services.progress.state import LearnerRecord, decode, encode
from services.progress.wire import EnvelopeView, parse_statement_envelope
from shared.batching import DecodedValues, Holdable
from shared.envelope import STATEMENT_V1
from shared.errors import PermanentError, is_retriable

log = logging.getLogger(__name__)

ACCEPTED = frozenset({STATEMENT_V1})

#: ``send(topic, key, value)``: hands a record to the producer (delivery awaited by ``flush``)
Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]
#: ``send_many(topic, [(key, value), ...])``: hands records to the producer in this order
#: (delivery awaited by ``flush``)
SendMany = Callable[[str, list[tuple[bytes, bytes]]], Awaitable[Any]]


def deadletter_body(reason: str, error: str, event: Any) -> bytes:
    msg = event.message
    return orjson.dumps(
        {
            "reason": reason,
            "error": error[:500],
            "service": "progress",
            "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
            "original": base64.b64encode(event.value or b"").decode(),
            "at": datetime.now(UTC).isoformat(),
        }
    )


def checked_key(key: bytes | None, env: EnvelopeView) -> bytes:
    """The table is co-partitioned with the source by key: a message keyed otherwise than its
    envelope says would put the learner's state on the wrong partition."""
    if key != env.key:
        raise PermanentError(f"message key {key!r} is not {env.key!r}")
    return env.key


@dataclass
class Batch:
    events: list[Any] = field(default_factory=list)
    pending: dict[bytes, LearnerRecord] = field(default_factory=dict)
    updates: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value), in order
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # "" kind: redelivered
    published: int = 0
    started: float = 0.0


class Pipeline(Holdable):
    def __init__(
        self,
        *,
        table: Any,
        processor: Processor,
        projector: Projector,
        metrics: ProgressMetrics,
        send: Send,
        send_many: SendMany,
        write_entries: Callable[[list[tuple[bytes, bytes]]], Awaitable[None]],
        flush_producer: Callable[[], Awaitable[None]],
        updates_topic: str,
        deadletter_topic: str,
        batch_max: int,
        within: float,
        decoded_max: int = 4096,  # about 12 KB each with 20 competencies: <= ~48 MiB
        read: Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self._table = table
        # the table's value of a key (default ``table.get``; the worker's reads its store)
        self._read: Callable[[bytes], bytes | None] = table.get if read is None else read
        self._processor = processor
        self._projector = projector
        self._metrics = metrics
        self._send = send
        self._send_many = send_many
        self._write_entries = write_entries
        self._flush_producer = flush_producer
        self._updates = updates_topic
        self._deadletter = deadletter_topic
        self._max = batch_max
        self.within = within
        super().__init__()
        self._batch = Batch()
        self._inflight: asyncio.Future[None] | None = None
        # the entries of the sealed batch being flushed: written to the table only once its
        # projection is committed and its updates acknowledged (read through ``record_of``)
        self._sealed: dict[bytes, LearnerRecord] = {}
        self._lock = asyncio.Lock()
        # learner records decoded from (or encoded into) the table
        self._decoded = DecodedValues(decode, decoded_max)
        self.ack: Callable[[Any], Awaitable[Any]] | None = None

    def record_of(self, key: bytes) -> LearnerRecord:
        pending = self._batch.pending.get(key)
        if pending is None:
            pending = self._sealed.get(key)
        if pending is not None:
            return pending
        return self._decoded.get(key, self._read(key))

    async def on_event(self, event: Any) -> None:
        async with self._lock:
            batch = self._batch
            if not batch.events:
                batch.started = asyncio.get_running_loop().time()
            batch.events.append(event)
            await self._apply(event, batch)
            if len(batch.events) >= self._max and self.flowing:
                await self._seal()

    async def _apply(self, event: Any, batch: Batch) -> None:
        msg = event.message
        try:
            env = parse_statement_envelope(event.value, ACCEPTED)
            key = checked_key(event.key, env)
            record = self.record_of(key)
            applied = msg.offset <= record.offset  # the table holds it: so does everything else
            outcome = self._processor.process(env, record, applied=applied, offset=msg.offset)
        except Exception as exc:
            if is_retriable(exc):
                raise
            reason = exc.reason if isinstance(exc, PermanentError) else "error"
            if not isinstance(exc, PermanentError):
                log.exception("statement failed; dead-lettered", extra={"reason": reason})
            self._metrics.deadletters.labels(reason).inc()
            await self._send(self._deadletter, event.key, deadletter_body(reason, str(exc), event))
            self._projector.add(msg.partition, msg.offset, None)  # moves the watermark only
            return
        if outcome.duplicate:
            batch.counts[(env.tenant, "")] += 1
        else:
            batch.pending[key] = outcome.record
            batch.counts[(env.tenant, outcome.evidence)] += 1
        if not applied:  # else its updates were acknowledged before the table took it
            # handed to the producer when the batch is sealed (in order, batched per partition)
            batch.updates.extend([(key, update.value) for update in outcome.updates])
            batch.published += len(outcome.updates)
        self._projector.add(msg.partition, msg.offset, outcome)

    async def tick(self) -> None:
        """Seal the open batch if it is older than ``within`` (called by a timer) and the
        previous flush is done: while one is in flight the batch keeps filling (up to
        ``batch_max``) instead of queueing behind it, so a busy worker makes bigger batches --
        fewer transactions, changelog writes and produce requests per event."""
        async with self._lock:
            if not self.flowing:
                return
            inflight = self._inflight
            if inflight is not None and inflight.done():
                inflight.result()  # a failed flush surfaces even when no event comes
            elif inflight is not None:
                return
            batch = self._batch
            age = asyncio.get_running_loop().time() - batch.started
            if batch.events and age >= self.within:
                await self._seal()

    async def _seal(self) -> None:
        batch, self._batch = self._batch, Batch()
        items = self._projector.take()
        if batch.updates:
            await self._send_many(self._updates, batch.updates)
        if self._inflight is not None:
            await self._inflight  # in order, one at a time; raises if it failed
        self._sealed = batch.pending
        self._inflight = asyncio.ensure_future(self._flush(batch, items))

    async def _flush(self, batch: Batch, items: list[Any]) -> None:
        # the table (one write per learner per batch) says "applied" only once every other
        # effect is durable: a restarted worker skips what its table holds (by offset) and
        # recomputes the rest, so a projection or an update is never rebuilt from a later state
        await asyncio.gather(self._projector.flush(items), self._flush_producer())
        entries = []
        for key, record in batch.pending.items():
            raw = encode(record)
            entries.append((key, raw))
            self._decoded.remember(key, raw, record)
        await self._write_entries(entries)
        if self._sealed is batch.pending:
            self._sealed = {}  # the table holds them now
        await self._flush_producer()
        assert self.ack is not None
        for event in batch.events:
            await self.ack(event)
        for (tenant, kind), n in batch.counts.items():
            if kind:
                self._metrics.events.labels(tenant, kind).inc(n)
            else:
                self._metrics.redelivered.labels(tenant).inc(n)
        self._metrics.updates.inc(batch.published)

    async def drain(self) -> None:
        """Seal the open batch and wait for every flush (idle periods, tests, shutdown); waits
        for :meth:`release` first when held."""
        async with self._lock:
            await self.until_flowing()
            if self._batch.events:
                await self._seal()
            if self._inflight is not None:
                await self._inflight
                self._inflight = None

    async def abandon(self) -> None:
        """On stop: let a flush in flight finish; the open batch is redelivered later."""
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await self._inflight
