"""The Faust side: one thin agent on ``progress.updates`` and the learners table.

The table ``learners`` maps ``"<tenant>|<learner_key>"`` (the topic's key, so table and topic
are co-partitioned) to the learner's detector state as JSON bytes. It is changelog-backed
(compacted ``<app id>-learners-changelog``), so a restarted worker recovers it before it
consumes. All logic is in :class:`~services.alerts.processor.Processor`.

The agent hands each event to the processor as a batch of one (one PostgreSQL transaction),
while the event is Faust's current event: the table write then goes to the changelog partition
of that learner, and the offset is acknowledged only after the effects. (Batching several events
per transaction through ``stream.take_events`` was measured 8x faster, but writing the table for
another event than the current one broke Faust's take buffer: "Take buffer found current_event
is None", which stopped the agent. Batching needs a table write path that names the partition.)
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


def _current_is_set(index: int) -> None:
    """The processor's hook to make record ``index`` Faust's current event: with batches of
    one, Faust has already made it so."""


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
        async for event in stream.events():
            # one event per transaction: Faust's own current event routes the table's
            # changelog write to the learner's partition (see the module docstring)
            await processor.process_batch(
                [(event.key, event.value)], table, _current_is_set, [event.message.partition]
            )
            yield None

    app.agent(source, name="detect")(detect)
    return Stream(app, table)
