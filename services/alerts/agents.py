"""The Faust side: one thin agent on ``progress.updates`` and the learners table.

The table ``learners`` maps ``"<tenant>|<learner_key>"`` (the topic's key, so table and topic
are co-partitioned) to the learner's detector state as JSON bytes. It is changelog-backed
(compacted ``<app id>-learners-changelog``), so a restarted worker recovers it before it
consumes. All logic is in :class:`~services.alerts.processor.Processor`.

The agent takes up to ``BATCH_SIZE`` events at a time (``stream.take_events``: a full buffer
at once, or what arrived within ``BATCH_SECONDS``) and hands them to the processor as one batch
(one PostgreSQL transaction). ``take_events`` acknowledges the events only after the batch was
processed, so the offsets never run ahead of the effects. Table writes are made with the batch's
record of the same learner as Faust's current event, so each changelog record goes to that
learner's partition.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import faust

from services.alerts.config import AlertsSettings
from services.alerts.processor import Processor
from shared.kafka import Topics
from shared.streaming import make_faust_app, raw_topic

TABLE = "learners"
#: most progress updates applied in one PostgreSQL transaction: large enough to amortise the
#: commit and the per-statement round trips under a flood, small enough to keep a transaction
#: (and the table writes that wait for it) well under a second
BATCH_SIZE = 500
#: longest wait for a batch to fill: the latency added to an update at low traffic
BATCH_SECONDS = 0.05


@dataclass(frozen=True)
class Stream:
    app: faust.App
    table: Any


def build_stream(settings: AlertsSettings, topics: Topics, processor: Processor) -> Stream:
    """A new, unstarted Faust app with the detector agent (run it with ``running``)."""
    app = make_faust_app(
        settings.app_id,
        bootstrap=settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix,
        partitions=settings.partitions,
        group_instance_id=settings.group_instance_id,
    )
    source = raw_topic(app, topics.progress_updates, settings.partitions)
    table = app.Table(
        TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
    )

    async def detect(stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(BATCH_SIZE, BATCH_SECONDS):

            def current(index: int, events: Any = events) -> None:
                # no public way to choose the changelog partition of a table write
                stream._set_current_event(events[index])

            records = [(event.key, event.value) for event in events]
            partitions = [event.message.partition for event in events]
            # take_events' buffering reads ``stream.current_event`` for the next record, which
            # Faust may already have set while this batch runs: put it back afterwards, or
            # that record would be replaced by one of this batch (processed twice, one lost)
            previous = stream.current_event
            try:
                await processor.process_batch(records, table, current, partitions)
            finally:
                stream._set_current_event(previous)
            yield None

    app.agent(source, name="detect")(detect)
    return Stream(app, table)
