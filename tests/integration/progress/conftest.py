"""Runs the real progress service in-process against the test's own topics and schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from services.ingest.handlers import Prepared
from services.progress import repository as repo
from services.progress.config import ProgressSettings
from shared.kafka import kafka_producer
from tests.unit.progress.samples import SALT

LC_COLUMNS = (
    "tenant, learner_key, competency, framework, framework_version, mastery, mastered, attempts,"
    " correct_total, correct_streak, wrong_streak, hints, time_on_task_s, first_event_at,"
    " last_event_at, mastered_at"
)


@pytest.fixture
def settings(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> ProgressSettings:
    return ProgressSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        partitions=2,
        http_port=0,
        learner_key_salt=SecretStr(SALT),
        app_id="progress",
        framework_poll_seconds=0.2,
        batch_within_seconds=0.05,
        db_pool_max=4,
    )


async def produce(
    bootstrap: str, topic: str, items: Sequence[Prepared | tuple[bytes, bytes]]
) -> None:
    async with kafka_producer(bootstrap) as producer:
        for item in items:
            if isinstance(item, Prepared):
                await producer.send(topic, item.envelope, key=item.key)
            else:
                await producer.send(topic, item[1], key=item[0])
        await producer.flush()


async def projection(conn: repo.Conn) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted (for comparing two builds)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in repo.PROJECTION_TABLES:
        rows = await conn.fetch(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(r.values()) for r in rows)
    return out
