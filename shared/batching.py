"""Batched stream processing for the Faust workers (progress, alerts): read with manual
acknowledgement, gather events into batches sealed by size or age, make each batch's effects
durable at once (one PostgreSQL transaction, table changelog and records flushed to Kafka), and
only then acknowledge its events (at-least-once; every effect is idempotent).

* :class:`CachingPartitioner`: aiokafka's default partitioner (murmur2 of the key) with the
  hashes remembered; the producer's partitioner of the apps that use it;
* :class:`Output`: what a worker sends through the Faust app's producer: records batched per
  partition, and table writes whose changelog records are sent the same way, to the partition
  of the key (the table is declared ``use_partitioner=True``), not the current event's -- so a
  batch can write the table for any of its events (Faust's ``Table.__setitem__`` outside the
  event being processed breaks its ``take`` buffer);
* :class:`Batcher`: the batch life cycle (seal on size or on a timer, one flush in flight, in
  order, acknowledgement after the flush) for a worker whose whole work is done on the sealed
  batch;
* :func:`consume_in_batches`: the body of a thin agent feeding any such pipeline;
* :class:`DecodedValues`: table values decoded once, reused while the table holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import faust
from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.delivery import OffsetGuard, Refetched

log = logging.getLogger(__name__)

#: acknowledges one event of a ``stream.noack()`` stream (Faust commits up to it)
Ack = Callable[[Any], Awaitable[Any]]
V = TypeVar("V")


class DecodedValues(Generic[V]):
    """Table values decoded (or encoded) by this worker, by key, each with the exact bytes
    object it belongs to: :meth:`get` decodes again unless the table still holds that very
    object (a recovery, a rebalance or any other writer puts other objects there). A worker
    reads each learner's entry once per batch and wrote it at the end of the previous one, so
    most reads skip the decoding. The values must never be changed in place (the workers'
    states are copied on write). Bounded: the least recently stored entry goes first."""

    def __init__(self, decode: Callable[[bytes | None], V], max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._decode = decode
        self._max = max_entries
        self._entries: dict[bytes, tuple[bytes, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, raw: bytes | None) -> V:
        """The value of ``raw``, the table's current value for ``key``."""
        hit = self._entries.get(key)
        if hit is not None and raw is not None and hit[0] is raw:
            return hit[1]
        value = self._decode(raw)
        if raw is not None:
            self.remember(key, raw, value)
        return value

    def remember(self, key: bytes, raw: bytes, value: V) -> None:
        """``raw`` (about to be written for ``key``) encodes ``value``."""
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: the oldest entries go first
        if len(entries) >= self._max:
            del entries[next(iter(entries))]
        entries[key] = (raw, value)


class CachingPartitioner:
    """aiokafka's :class:`DefaultPartitioner` (murmur2 of the key, as Kafka's Java client) with
    each key's hash remembered: the hash is pure Python and a worker sends every learner's key
    over and over (updates, changelog). Same partitions as the default; bounded (emptied when
    full: a miss only costs the hash again)."""

    def __init__(self, max_keys: int = 200_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max = max_keys
        self._default = DefaultPartitioner()

    def hash(self, key: bytes) -> int:
        value = self._hashes.get(key)
        if value is None:
            value = murmur2(key) & 0x7FFFFFFF
            if len(self._hashes) >= self._max:
                self._hashes.clear()
            self._hashes[key] = value
        return value

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self._default(key, all_partitions, available)  # type: ignore[no-any-return]
        return all_partitions[self.hash(key) % len(all_partitions)]


class Output:
    """What a pipeline sends, through the Faust app's producer (built lazily by Faust: looked
    up at call time)."""

    def __init__(self, app: faust.App, table: Any, partitioner: CachingPartitioner) -> None:
        self._app = app
        self._table = table
        self._partitioner = partitioner
        self._memory_store = str(app.conf.store).startswith("memory:")
        self._sent: list[asyncio.Future[Any]] = []  # record batches not yet seen delivered

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        return await self._app.producer.send(topic, key, value, None, None, None)

    async def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """One record batch per partition (appended in C by aiokafka's batch builder) instead
        of a send coroutine chain per record; partitions as the producer's partitioner picks
        them; the order of the records is kept within each partition."""
        producer: Any = self._app.producer
        client: Any = producer._ensure_producer()  # the aiokafka producer (no public accessor)
        ordered = sorted(client._metadata.partitions_for_topic(topic) or ())
        if not ordered:
            for key, value in records:  # metadata not known yet: the ordinary path waits for it
                await self.send(topic, key, value)
            return
        builders: dict[int, Any] = {}
        for key, value in records:
            partition = ordered[self._partitioner.hash(key) % len(ordered)]
            builder = builders.get(partition)
            if builder is None:
                builder = builders[partition] = client.create_batch()
            if builder.append(key=key, value=value, timestamp=None) is None:  # full
                self._sent.append(await client.send_batch(builder, topic, partition=partition))
                builder = builders[partition] = client.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in builders.items():
            self._sent.append(await client.send_batch(builder, topic, partition=partition))

    async def write_entries(self, entries: list[tuple[bytes, bytes]]) -> None:
        """``table[key] = value`` for each entry, with the changelog records batched.

        ``Table.__setitem__`` is ``on_key_set`` (a changelog record through Faust's producer
        buffer, one coroutine chain per key, partitioned by the producer's partitioner as
        ``use_partitioner`` asks) then ``table.data[key] = value``. The same records are sent
        here through :meth:`send_many` (same topic, key, value and partition). Only for the
        memory store (the one the workers use): an on-disk store also records the changelog
        offsets Faust's path reports, so any other store takes Faust's path."""
        table = self._table
        if not self._memory_store:
            for key, value in entries:
                table[key] = value
            return
        data = table.data
        for key, value in entries:
            data[key] = value
        await self.send_many(table.changelog_topic.get_topic_name(), entries)

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged; raises if a record batch failed
        (its events are then not acknowledged: they are delivered again)."""
        await self._app.producer.flush()
        sent, self._sent = self._sent, []
        await asyncio.gather(*sent)


class BatchPipeline(Protocol):
    """What :func:`consume_in_batches` drives (:class:`Batcher`, the progress pipeline)."""

    ack: Ack | None

    @property
    def within(self) -> float: ...

    async def on_event(self, event: Any) -> None: ...

    async def tick(self) -> None: ...

    async def hold(self) -> None: ...

    def release(self) -> None: ...

    async def abandon(self) -> None: ...


async def consume_in_batches(
    app: faust.App, stream: Any, pipeline: BatchPipeline, guard: OffsetGuard | None = None
) -> None:
    """The body of a thin agent: events with manual acknowledgement into ``pipeline``, and a
    timer sealing partial batches (every ``within / 2`` seconds). A failing timer crashes the
    app (readiness reports it; the process should be restarted). With ``guard``, records
    Faust skipped are read again and given to the pipeline in order
    (:class:`~shared.delivery.OffsetGuard`); it forgets the partitions the worker loses. From a
    revocation until Faust's table recovery is complete, the pipeline is held (no flush)."""
    manual = stream.noack()  # acknowledged by the pipeline once a batch is durable

    async def ack(event: Any) -> Any:
        if isinstance(event, Refetched):
            return event.ack(app.consumer)
        return await manual.ack(event)

    pipeline.ack = ack

    held_at: list[float] = []  # when the pipeline was held (empty: released)

    async def on_revoked(_sender: Any, /, *args: Any, signal: Any = None, **_: Any) -> None:  # noqa: ARG001
        (revoked,) = args
        if guard is not None:
            guard.forget(tp.partition for tp in revoked if tp.topic == guard.topic)
        held_at[:] = [time.monotonic()]
        await pipeline.hold()

    async def on_rebalanced(_sender: Any, /, *_args: Any, signal: Any = None, **_: Any) -> None:  # noqa: ARG001
        pipeline.release()
        if held_at:
            log.info(
                "rebalance complete: batches flow again",
                extra={"held_s": round(time.monotonic() - held_at.pop(), 3)},
            )

    # A rebalance re-reads the table's changelog (Faust's recovery, also for the partitions the
    # worker keeps) up to the end offsets it finds when it starts. A flush writing table
    # entries meanwhile could be overwritten by that replay with an older entry, and the next
    # events of those learners applied to a state that lacks acknowledged ones. So: no flush
    # is in flight or starts from the revocation until the recovery is complete.
    app.on_partitions_revoked.connect(on_revoked, weak=False)
    app.on_rebalance_complete.connect(on_rebalanced, weak=False)

    async def timer() -> None:
        try:
            while True:
                await asyncio.sleep(pipeline.within / 2)
                await pipeline.tick()
        except Exception as exc:
            await app.crash(exc)
            raise

    ticking = asyncio.ensure_future(timer())
    try:
        async for event in manual.events():
            if guard is None or guard.in_order(event):
                await pipeline.on_event(event)
            else:
                async with contextlib.aclosing(guard.admit(event)) as admitted:
                    async for each in admitted:
                        await pipeline.on_event(each)
    finally:
        ticking.cancel()
        await pipeline.abandon()


class Holdable:
    """``hold``/``release`` of a batch pipeline (a rebalance, see :func:`consume_in_batches`):
    between them the pipeline seals no batch (events keep filling the open one); ``hold``
    returns once the flush in flight (``_inflight``) has ended, whatever its outcome (a failure
    is raised by the pipeline's next tick or event, not here)."""

    _inflight: asyncio.Future[None] | None

    def __init__(self) -> None:
        self._released = asyncio.Event()
        self._released.set()

    @property
    def flowing(self) -> bool:
        """False between :meth:`hold` and :meth:`release`."""
        return self._released.is_set()

    async def hold(self) -> None:
        self._released.clear()
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._inflight)

    def release(self) -> None:
        self._released.set()

    async def until_flowing(self) -> None:
        await self._released.wait()


#: makes a sealed batch's effects durable (raises if they are not: nothing is acknowledged)
Flush = Callable[[list[Any]], Awaitable[None]]
#: ``observe(events, seconds)``: a batch was acknowledged, ``seconds`` after its first event
Observe = Callable[[int, float], None]


@dataclass
class _Open:
    events: list[Any] = field(default_factory=list)
    started: float = 0.0


class Batcher(Holdable):
    """Events into batches, each flushed as a whole by ``flush`` (called with the batch's events
    in arrival order), then acknowledged.

    A batch is sealed when it holds ``batch_max`` events, or on :meth:`tick` once it is older
    than ``within`` seconds and the previous flush is done (while one is in flight the batch
    keeps filling: a busy worker makes bigger batches). At most one flush is in flight and
    flushes run in order, so a flush sees every effect of the batches before it (e.g. the table
    entries they wrote). Sealing a full batch waits for the flush in flight (back-pressure).
    Between :meth:`hold` (which waits for the flush in flight) and :meth:`release` nothing is
    sealed: events keep filling the open batch (a rebalance, see :func:`consume_in_batches`).
    A failed flush raises in the next :meth:`on_event` or :meth:`tick` and its events are
    never acknowledged (delivered again after a restart)."""

    def __init__(
        self, flush: Flush, *, batch_max: int, within: float, observe: Observe | None = None
    ) -> None:
        if batch_max < 1 or within <= 0:
            raise ValueError(f"batch_max {batch_max} and within {within} must be positive")
        self._flush = flush
        self._max = batch_max
        self._within = within
        self._observe = observe
        self._batch = _Open()
        super().__init__()
        self._inflight: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self.ack: Ack | None = None

    @property
    def within(self) -> float:
        return self._within

    async def on_event(self, event: Any) -> None:
        async with self._lock:
            batch = self._batch
            if not batch.events:
                batch.started = asyncio.get_running_loop().time()
            batch.events.append(event)
            if len(batch.events) >= self._max and self.flowing:
                await self._seal()

    async def tick(self) -> None:
        """Seal the open batch if it is older than ``within`` and no flush is in flight."""
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
            if batch.events and age >= self._within:
                await self._seal()

    async def _seal(self) -> None:
        batch, self._batch = self._batch, _Open()
        if self._inflight is not None:
            await self._inflight  # in order, one at a time; raises if it failed
        self._inflight = asyncio.ensure_future(self._run(batch))

    async def _run(self, batch: _Open) -> None:
        await self._flush(batch.events)
        ack = self.ack
        if ack is not None:
            for event in batch.events:
                await ack(event)
        if self._observe is not None:
            elapsed = asyncio.get_running_loop().time() - batch.started
            self._observe(len(batch.events), elapsed)

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
        """On stop: let a flush in flight finish; the open batch is delivered again later."""
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await self._inflight
