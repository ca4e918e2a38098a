"""The Faust side of the worker: app, table, topics and one thin agent.

The agent reads statements with manual acknowledgement and hands each to the
:class:`~services.progress.pipeline.Pipeline`, which applies it, seals batches, projects them
and acknowledges their events only once every effect is durable (at-least-once, every effect
idempotent). Poison messages go to the dead-letter topic with their reason. An
:class:`~shared.delivery.OffsetGuard` (positions from the projection's watermarks) reads again
any record Faust's stream skips around a rebalance, so none is committed unprocessed.

The table (``learners``) is keyed by the source message key ``"<tenant>|<learner_key>"`` and
uses the producer's partitioner for its changelog, so changelog partition = source partition
(both hashed by the same key and partitioner) and a worker recovers exactly the learners of the
partitions it is assigned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.pipeline import Pipeline
from services.progress.projection import Projector
from shared.batching import CachingPartitioner, Output, consume_in_batches
from shared.delivery import OffsetGuard, group_committed, group_position, refetch
from shared.kafka import Topics
from shared.streaming import make_faust_app, raw_topic

log = logging.getLogger(__name__)

TABLE = "learners"


def table_reader(app: faust.App, table: Any) -> Callable[[bytes], bytes | None]:
    """``table.get``; for the memory store (the workers'), its dict read directly: Faust's
    ``Table.get`` goes through several Python layers per read (``Mapping.get``,
    ``on_key_get`` -- only a count for Faust's monitor --, ``UserDict.__getitem__``), once per
    event here. The entries are written past them the same way
    (:meth:`shared.batching.Output.write_entries`)."""
    if not str(app.conf.store).startswith("memory:"):
        return table.get  # type: ignore[no-any-return]

    def read(key: bytes) -> bytes | None:
        return table.data.data.get(key)  # type: ignore[no-any-return]

    return read


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
        read=table_reader(app, table),
    )

    guard = OffsetGuard(
        topics.statements,
        partial(refetch, bootstrap, topics.statements),
        position=projector.next_offset,
        on_gap=lambda _partition, records: metrics.refetched.inc(records),
        fallback=partial(group_position, bootstrap, app.conf.id, topics.statements),
        # the table's entries are written after the watermark's transaction: resume at the
        # group's commit when it is earlier (``shared.delivery``)
        committed=partial(group_committed, bootstrap, app.conf.id, topics.statements),
    )

    async def process(stream: Any) -> None:
        # acknowledged once a batch is durable; nothing Faust skips is lost (the guard)
        await consume_in_batches(app, stream, pipeline, guard)

    app.agent(source, name="statements")(process)
    return Worker(app, table, processor, projector, pipeline, topics.statements)
