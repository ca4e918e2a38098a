"""The Faust side: one thin agent on ``progress.updates`` and the learners table.

The table ``learners`` maps ``"<tenant>|<learner_key>"`` (the topic's key, so table and topic
are co-partitioned) to the learner's detector state as JSON bytes. It is changelog-backed
(compacted ``<app id>-learners-changelog``), so a restarted worker recovers it before it
consumes. All logic is in :class:`~services.alerts.processor.Processor`.
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
        async for key, value in stream.items():
            await processor.process(key, value, table)
            yield None

    app.agent(source, name="detect")(detect)
    return Stream(app, table)
