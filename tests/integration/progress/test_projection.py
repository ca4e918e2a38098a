"""The projection's exactly-once effect and framework storage rules, on the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.progress import repository as repo
from services.progress.app import migrate
from services.progress.errors import FrameworkConflictError
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.outcome import Outcome
from services.progress.projection import Projector
from services.progress.state import LearnerRecord
from shared import watermarks
from shared.db import create_pool
from shared.envelope import STATEMENT_V1, Envelope
from tests.integration.progress.conftest import projection
from tests.unit.progress.samples import SALT, T0, framework, prepared

TOPIC = "t.xapi.statements"


@pytest.fixture
async def pool(database_url: str, db_schema: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    async with create_pool(database_url, db_schema, max_size=2) as pool:
        await migrate(pool, db_schema)
        yield pool


def _outcomes(n: int) -> list[Outcome]:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework()])
    proc = Processor(registry)
    record = LearnerRecord()
    out = []
    for i in range(n):
        env = Envelope.parse(
            prepared(success=i % 2 == 0, at=T0 + timedelta(hours=i)).envelope, {STATEMENT_V1}
        )
        result = proc.process(env, record)
        record = result.record
        out.append(result)
    return out


async def test_replayed_batches_change_nothing_and_older_state_never_wins(
    pool: asyncpg.Pool[Any],
) -> None:
    metrics = ProgressMetrics(CollectorRegistry())
    outs = _outcomes(4)
    projector = Projector(pool, TOPIC, metrics)
    for offset, out in enumerate(outs[:3]):
        projector.add(0, offset, out)
    assert await projector.flush() == 3
    async with pool.acquire() as conn:
        first = await projection(conn)
    assert first["learner_competency"][0][7] == 3  # attempts

    # the same batch again (the worker died after the commit, before Kafka's): no effect
    for offset, out in enumerate(outs[:3]):
        projector.add(0, offset, out)
    assert await projector.flush() == 0
    async with pool.acquire() as conn:
        assert await projection(conn) == first

    # a replay of an *older* statement with a new batch: only the newer offset applies
    projector.add(0, 1, outs[1])
    projector.add(0, 3, outs[3])
    assert await projector.flush() == 1
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT attempts FROM learner_competency")
        marks = await watermarks.read(conn, TOPIC)
    assert [r["attempts"] for r in rows] == [4]
    assert marks == {0: 3}
    assert metrics.projection_skipped._value.get() == 4


async def test_framework_versions_are_immutable_and_never_backdated(
    pool: asyncpg.Pool[Any],
) -> None:
    async with pool.acquire() as conn:
        assert await repo.store_framework(conn, framework(), SALT) == "stored"
        assert await repo.store_framework(conn, framework(), SALT) == "unchanged"
        with pytest.raises(FrameworkConflictError, match="immutable"):
            await repo.store_framework(conn, framework(q1_to="py.loops"), SALT)
        later = framework(version=2, effective_from=datetime(2026, 3, 1, tzinfo=UTC))
        assert await repo.store_framework(conn, later, SALT) == "stored"
        backdated = framework(version=3, effective_from=datetime(2026, 2, 1, tzinfo=UTC))
        with pytest.raises(FrameworkConflictError, match="rewrite history"):
            await repo.store_framework(conn, backdated, SALT)
        versions = [v.version for v in await repo.load_frameworks(conn)]
        members = await conn.fetchval("SELECT count(*) FROM programme_learners")
    assert versions == [1, 2]
    assert members == 2
