"""The Faust side of the worker: app, table, topics and one thin agent.

The agent reads statements with manual acknowledgement and hands each to the
:class:`~services.progress.pipeline.Pipeline`, which applies it, seals batches, projects them
and acknowledges their events only once every effect is durable (at-least-once, every effect
idempotent). Poison messages go to the dead-letter topic with their reason.

The table (``learners``) is keyed by the source message key ``"<tenant>|<learner_key>"`` and
uses the producer's partitioner for its changelog, so changelog partition = source partition
(both hashed by the same key and partitioner) and a worker recovers exactly the learners of the
partitions it is assigned.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.pipeline import Pipeline
from services.progress.projection import Projector
from shared.kafka import Topics
from shared.streaming import make_faust_app, raw_topic

log = logging.getLogger(__name__)

TABLE = "learners"


class CachingPartitioner:
    """aiokafka's :class:`DefaultPartitioner` (murmur2 of the key, as Kafka's Java client) with
    each key's hash remembered: the hash is pure Python and the worker sends every learner's
    key over and over (updates, changelog). Same partitions as the default; bounded (emptied
    when full: a miss only costs the hash again)."""

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
    """What the pipeline sends, through the Faust app's producer (built lazily by Faust: looked
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
        memory store (the one the worker uses): an on-disk store also records the changelog
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


@dataclass
class Worker:
    app: faust.App
    table: Any  # faust.Table[bytes, bytes]
    processor: Processor
    projector: Projector
    pipeline: Pipeline
    source_topic: str


def build_worker(
    *,
    app_id: str,
    bootstrap: str,
    topics: Topics,
    processor: Processor,
    projector: Projector,
    metrics: ProgressMetrics,
    batch_max: int = 1000,
    batch_within: float = 0.2,
    data_dir: str | None = None,
    group_instance_id: str | None = None,
) -> Worker:
    """A new, unstarted worker (an app object runs once: build a new one to run again)."""
    partitioner = CachingPartitioner()
    app = make_faust_app(
        app_id,
        bootstrap=bootstrap,
        topic_prefix=topics.prefix,
        partitions=topics.partitions,
        data_dir=data_dir,
        group_instance_id=group_instance_id,
        # the batch ends with a flush: bigger produce requests instead of one per message
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        producer_partitioner=partitioner,
    )
    table = app.Table(
        TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,  # the app's serializers are raw (make_faust_app)
        partitions=topics.partitions,
        use_partitioner=True,
    )
    source = raw_topic(app, topics.statements, topics.partitions)
    # declared so Faust knows them; sent to through the producer directly (cheaper per message)
    raw_topic(app, topics.progress_updates, topics.partitions)
    raw_topic(app, topics.deadletter, 1)

    out = Output(app, table, partitioner)

    pipeline = Pipeline(
        table=table,
        processor=processor,
        projector=projector,
        metrics=metrics,
        send=out.send,
        send_many=out.send_many,
        write_entries=out.write_entries,
        flush_producer=out.flush,
        updates_topic=topics.progress_updates,
        deadletter_topic=topics.deadletter,
        batch_max=batch_max,
        within=batch_within,
    )

    async def timer() -> None:
        try:
            while True:
                await asyncio.sleep(pipeline.within / 2)
                await pipeline.tick()
        except Exception as exc:
            await app.crash(exc)  # readiness reports it; the process should be restarted
            raise

    async def process(stream: Any) -> None:
        manual = stream.noack()  # acknowledged by the pipeline once a batch is durable
        pipeline.ack = manual.ack
        ticking = asyncio.ensure_future(timer())
        try:
            async for event in manual.events():
                await pipeline.on_event(event)
        finally:
            ticking.cancel()
            await pipeline.abandon()

    app.agent(source, name="statements")(process)
    return Worker(app, table, processor, projector, pipeline, topics.statements)
