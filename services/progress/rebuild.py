"""Rebuilding the projection: replay ``xapi.statements`` from the beginning into empty tables.

The projection tables and watermarks are emptied, then a worker with a fresh app id (so a new
consumer group reading from the earliest offset, and new, empty changelog-backed tables) runs
until its watermarks reach the end offsets the topic had when the rebuild started. Processing
is deterministic (event time, framework versions by event time, ids derived from statement ids),
so the result equals the projection the live worker built. Stop the live workers first; after
the rebuild they may continue (their state equals the rebuilt one) or be restarted with
``PROGRESS_APP_ID`` set to the rebuild's app id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import TopicPartition

from services.progress import repository as repo
from services.progress.app import migrate, open_progress, topics_of
from services.progress.config import ProgressSettings
from shared import watermarks
from shared.db import create_pool
from shared.errors import DependencyUnavailableError
from shared.kafka import kafka_consumer, wait_for_broker

log = logging.getLogger(__name__)


async def end_offsets(settings: ProgressSettings) -> dict[int, int]:
    topics = topics_of(settings)
    tps = [TopicPartition(topics.statements, p) for p in range(settings.partitions)]
    async with kafka_consumer(settings.kafka_bootstrap_servers, group_id=None) as consumer:
        ends = await consumer.end_offsets(tps)
    return {tp.partition: int(offset) for tp, offset in ends.items()}


async def rebuild(
    settings: ProgressSettings, *, app_id: str | None = None, within: float = 600.0
) -> tuple[str, int]:
    """Run the rebuild; returns the app id used and the number of statements replayed."""
    app_id = app_id or f"{settings.app_id}-rebuild-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    await wait_for_broker(settings.kafka_bootstrap_servers)
    async with create_pool(
        settings.database_url.get_secret_value(), settings.db_schema, min_size=1, max_size=2
    ) as pool:
        await migrate(pool, settings.db_schema)
        async with pool.acquire() as conn, conn.transaction():
            await repo.clear_projection(conn)
    ends = await end_offsets(settings)
    wanted = {p: end - 1 for p, end in ends.items() if end > 0}
    topic = topics_of(settings).statements
    log.info("rebuild started", extra={"app_id": app_id, "statements": sum(ends.values())})
    async with open_progress(settings, app_id=app_id) as progress:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            async with progress.pool.acquire() as conn:
                marks = await watermarks.read(conn, topic)
            if all(marks.get(p, -1) >= o for p, o in wanted.items()):
                break
            if loop.time() > deadline:
                raise DependencyUnavailableError(
                    f"rebuild did not reach the end offsets {wanted} in {within} s: {marks}"
                )
            await asyncio.sleep(0.2)
    return app_id, sum(ends.values())
