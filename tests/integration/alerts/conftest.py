"""Runs the real alerts app in-process against the test's own topics and schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.alerts import staff_repository as staff_repo
from services.alerts.app import Alerts, open_alerts
from services.alerts.config import AlertsSettings
from services.alerts.staff import hash_token, new_token
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.events import ProgressUpdate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def learner(n: int) -> str:
    return f"{n:032x}"


def progress(
    at: datetime, *, tenant: str = "acme", who: str = learner(1), **payload: Any
) -> Envelope:
    fields: dict[str, Any] = {
        "statement_id": str(uuid.uuid4()),
        "evidence": "attempt",
        "competency": "py.basics",
        "programme": "ds-2026",
        "business_unit": "retail",
        "duration_s": 30.0,
    }
    fields.update(payload)
    update = ProgressUpdate.model_validate(fields)
    return Envelope.new(
        PROGRESS_UPDATE_V1,
        tenant=tenant,
        learner_key=who,
        occurred_at=at,
        payload=update.model_dump(mode="json"),
    )


@dataclass
class Running:
    alerts: Alerts
    base: str
    http: aiohttp.ClientSession

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.alerts.pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql, *args)]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.alerts.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def apply(self, env: Envelope, table: dict[bytes, bytes] | None = None) -> str:
        """Process one envelope as the agent would (without Kafka)."""
        return await self.alerts.processor.process(
            env.key, env.to_bytes(), {} if table is None else table
        )

    async def token(self, tenant: str, name: str, team: str | None = None) -> str:
        token = new_token()
        async with self.alerts.pool.acquire() as conn:
            assert await staff_repo.insert_token(conn, tenant, team, name, hash_token(token))
        return token


StartAlerts = Callable[..., Awaitable[Running]]


@pytest.fixture
def settings(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> AlertsSettings:
    return AlertsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        partitions=2,
        http_port=0,
        stream_enabled=False,
        relay_poll_seconds=0.2,
        retry_max_seconds=1.0,
        scan_seconds=3600,
        inactivity_clock="event",  # the test data is in March 2026, whatever today is
        settings_cache_seconds=0,
        webhook_timeout_seconds=0.5,
        webhook_backoff_seconds=0.2,
        webhook_max_attempts=3,
    )


@pytest.fixture
async def start_alerts(settings: AlertsSettings, kafka_cleanup: None) -> AsyncIterator[StartAlerts]:
    """``await start_alerts(**overrides)`` runs an alerts app (HTTP on a free port) until the
    test ends (or until ``stack`` closes it, for restarts)."""
    async with AsyncExitStack() as outer:
        http = await outer.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        )

        async def start(
            *, start_workers: bool = False, stack: AsyncExitStack | None = None, **overrides: Any
        ) -> Running:
            target = stack or outer
            merged = settings.model_copy(update=overrides)
            alerts = await target.enter_async_context(
                open_alerts(merged, start_workers=start_workers)
            )
            server = await target.enter_async_context(TestServer(alerts.app, host="127.0.0.1"))
            return Running(alerts, f"http://127.0.0.1:{server.port}", http)

        yield start
