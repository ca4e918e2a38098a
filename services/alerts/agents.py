"""The Faust side: one thin agent on ``progress.updates``, the learners table, and the batches.

The table ``learners`` maps ``"<tenant>|<learner_key>"`` (the topic's key) to the learner's
detector state as JSON bytes. It is changelog-backed (compacted ``<app id>-learners-changelog``)
and declared ``use_partitioner=True``: its changelog records are partitioned by key with the
same partitioner as the producer of ``progress.updates`` (murmur2, :class:`CachingPartitioner`),
so changelog partition = source partition and a restarted worker recovers exactly the learners
of the partitions it is assigned, before it consumes.

The agent reads with manual acknowledgement into a :class:`~shared.batching.Batcher`: a batch is
sealed at ``batch_max`` updates or ``batch_within`` seconds, then flushed as a whole --
:meth:`Processor.process_batch <services.alerts.processor.Processor.process_batch>` (detectors
in memory, ONE PostgreSQL transaction, then the learners' states written to the table, their
changelog records sent batched per partition by :class:`~shared.batching.Output`), the producer
flushed (changelog acknowledged by Kafka), and only then the batch's offsets acknowledged.
Writing the table data directly (not ``table[key] = value`` for another event than Faust's
current one, which broke Faust's ``take`` buffer) is what makes batching possible. While a
batch is flushed the next one fills; flushes run one at a time, in order, so each batch reads
the states the previous one wrote. Webhooks are not sent here: the transaction only queues
deliveries (``NOTIFY``), the delivery worker sends them. Each batch moves the partitions'
watermarks (``watermarks``) in its transaction; an :class:`~shared.delivery.OffsetGuard`
resumes from them and reads again any record Faust's stream skips around a rebalance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from services.alerts.config import AlertsSettings
from services.alerts.metrics import AlertsMetrics
from services.alerts.processor import Processor
from shared.batching import Batcher, CachingPartitioner, Output, consume_in_batches
from shared.delivery import OffsetGuard, group_committed, group_position, refetch
from shared.kafka import Topics
from shared.streaming import make_faust_app, raw_topic

TABLE = "learners"


@dataclass(frozen=True)
class Stream:
    app: faust.App
    table: Any  # faust.Table[bytes, bytes]
    batcher: Batcher


def build_stream(
    settings: AlertsSettings, topics: Topics, processor: Processor, metrics: AlertsMetrics
) -> Stream:
    """A new, unstarted Faust app with the detector agent (run it with ``running``)."""
    partitioner = CachingPartitioner()
    app = make_faust_app(
        settings.app_id,
        bootstrap=settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        partitions=settings.partitions,
        group_instance_id=settings.group_instance_id,
        # each batch ends with a flush: no need to linger long for bigger produce requests
        producer_linger=0.002,
        producer_partitioner=partitioner,
    )
    source = raw_topic(app, topics.progress_updates, settings.partitions)
    table = app.Table(
        TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        use_partitioner=True,
    )
    out = Output(app, table, partitioner)

    async def flush(events: list[Any]) -> None:
        await processor.process_batch(
            [(event.key, event.value) for event in events],
            table,
            partitions=[event.message.partition for event in events],
            offsets=[event.message.offset for event in events],
            write=out.write_entries,
            topic=topics.progress_updates,
        )
        await out.flush()  # the changelog records are acknowledged before the offsets

    def observe(size: int, seconds: float) -> None:
        metrics.batch_size.observe(size)
        metrics.batch_latency.observe(seconds)

    batcher = Batcher(
        flush,
        batch_max=settings.batch_max,
        within=settings.batch_within_seconds,
        observe=observe,
    )

    guard = OffsetGuard(
        topics.progress_updates,
        partial(refetch, settings.kafka_bootstrap_servers, topics.progress_updates),
        position=partial(processor.next_offset, topics.progress_updates),
        on_gap=lambda _partition, records: metrics.refetched.inc(records),
        fallback=partial(
            group_position, settings.kafka_bootstrap_servers, app.conf.id, topics.progress_updates
        ),
        # the table's entries are written after the watermark's transaction: resume at the
        # group's commit when it is earlier (``shared.delivery``)
        committed=partial(
            group_committed, settings.kafka_bootstrap_servers, app.conf.id, topics.progress_updates
        ),
    )

    async def detect(stream: Any) -> None:
        await consume_in_batches(app, stream, batcher, guard)

    app.agent(source, name="detect")(detect)
    return Stream(app, table, batcher)
