"""The worker on the real broker and database: updates, projection, dead letters, redelivery,
restart with table recovery, and an identical rebuild."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest

from services.progress import repository as repo
from services.progress.app import open_progress
from services.progress.config import ProgressSettings
from services.progress.rebuild import rebuild
from services.progress.wire import update_event_id
from shared import watermarks
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.events import ProgressUpdate
from shared.http import HEALTH_KEY
from tests.integration.progress.conftest import produce, projection
from tests.integration.waiting import consume, eventually
from tests.unit.progress.samples import SALT, T0, framework, prepared

pytestmark = pytest.mark.timeout(120)


async def _attempts(settings: ProgressSettings, pool: object, learner: str) -> int | None:
    async with pool.acquire() as conn:  # type: ignore[attr-defined]
        value = await conn.fetchval(
            "SELECT attempts FROM learner_competency WHERE learner_key=$1 AND competency=$2",
            learner,
            "py.basics",
        )
    return None if value is None else int(value)


async def test_statements_become_updates_projection_and_deadletters(
    settings: ProgressSettings, kafka_cleanup: None
) -> None:
    u1 = [
        prepared(user="u-1", success=ok, at=T0 + timedelta(minutes=i))
        for i, ok in enumerate([True, True, False])
    ]
    u2 = [prepared(user="u-2", success=True), prepared(user="u-2", activity="video", success=None)]
    async with open_progress(settings) as progress:
        async with progress.pool.acquire() as conn:
            await repo.store_framework(conn, framework(), SALT)
        assert await progress.refresher.refresh()
        topics = progress.topics
        poison = (u1[0].key, b"{not json")
        # the first statement is produced twice: a redelivery must not count twice
        await produce(
            settings.kafka_bootstrap_servers, topics.statements, [*u1, *u2, poison, u1[0]]
        )
        records = await consume(settings.kafka_bootstrap_servers, topics.progress_updates, 6)
        lk1 = Envelope.model_validate_json(u1[0].envelope).learner_key

        async def all_projected() -> bool:
            async with progress.pool.acquire() as conn:
                marks = await watermarks.read(conn, topics.statements)
            return sum(o + 1 for o in marks.values()) == 7  # the poison offset included

        await eventually(all_projected, what="all 7 offsets projected")
        dead = await consume(settings.kafka_bootstrap_servers, topics.deadletter, 1)
        readiness = await progress.app[HEALTH_KEY].readiness()
        assert readiness.ready, readiness.checks
        assert set(readiness.checks) == {"database", "broker", "tables"}
        async with progress.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT attempts, correct_total, wrong_streak, mastered FROM learner_competency"
                " WHERE learner_key=$1 AND competency='py.basics'",
                lk1,
            )
            events = await conn.fetchval(
                "SELECT events FROM learner_activity WHERE learner_key=$1", lk1
            )
    envs = [Envelope.model_validate_json(r.value) for r in records]
    assert all(e.schema_ == PROGRESS_UPDATE_V1 for e in envs)
    assert all(r.key == e.key for r, e in zip(records, envs, strict=True))
    ids = [e.event_id for e in envs]
    assert len(ids) == 6
    assert len(set(ids)) == 5  # the redelivered statement re-published the same event id
    assert update_event_id(u1[0].event_id, "py.basics") in ids
    u1_updates = [ProgressUpdate.model_validate(e.payload) for e in envs if e.key == u1[0].key]
    assert max(u.attempts for u in u1_updates) == 3
    assert row is not None
    assert dict(row) == {"attempts": 3, "correct_total": 2, "wrong_streak": 1, "mastered": False}
    assert events == 3
    body = orjson.loads(dead[0].value)
    assert body["reason"] == "invalid_message"
    assert body["source"]["topic"] == topics.statements
    assert progress.metrics.deadletters.labels("invalid_message")._value.get() == 1


async def test_restart_recovers_table_and_rebuild_is_identical(
    settings: ProgressSettings, kafka_cleanup: None
) -> None:
    first = [
        prepared(user="u-1", success=True, at=T0 + timedelta(minutes=i), statement_id=uuid.uuid4())
        for i in range(2)
    ]
    second = [
        prepared(user="u-1", success=i == 0, at=T0 + timedelta(hours=1, minutes=i))
        for i in range(2)
    ]
    lk = Envelope.model_validate_json(first[0].envelope).learner_key
    bootstrap = settings.kafka_bootstrap_servers
    async with open_progress(settings) as progress:
        async with progress.pool.acquire() as conn:
            await repo.store_framework(conn, framework(), SALT)
        await progress.refresher.refresh()
        await produce(bootstrap, progress.topics.statements, first)

        async def two() -> bool:
            return await _attempts(settings, progress.pool, lk) == 2

        await eventually(two, what="2 attempts projected")
        table_before = dict(progress.worker.table.items())  # type: ignore[union-attr]
        assert len(table_before) == 1

    # a restarted process: a new app object with the same id recovers the table from the
    # changelog; the first two statements are produced again and must not count twice
    async with open_progress(settings) as progress:
        assert progress.worker is not None
        assert dict(progress.worker.table.items()) == table_before
        await produce(bootstrap, progress.topics.statements, [*second, *first])

        async def four_and_caught_up() -> bool:
            async with progress.pool.acquire() as conn:
                marks = await watermarks.read(conn, progress.topics.statements)
            return (
                await _attempts(settings, progress.pool, lk) == 4
                and sum(o + 1 for o in marks.values()) == 6
            )

        await eventually(four_and_caught_up, what="4 attempts and all 6 offsets projected")
        async with progress.pool.acquire() as conn:
            live = await projection(conn)
            streak = await conn.fetchval(
                "SELECT wrong_streak FROM learner_competency WHERE learner_key=$1", lk
            )
    assert streak == 1
    assert len(live["learner_competency"]) == 1

    _app_id, count = await rebuild(settings, app_id="progress-rebuild", within=60)
    assert count == 6
    from shared.db import create_pool

    async with (
        create_pool(settings.database_url.get_secret_value(), settings.db_schema) as pool,
        pool.acquire() as conn,
    ):
        rebuilt = await projection(conn)
    assert rebuilt == live
