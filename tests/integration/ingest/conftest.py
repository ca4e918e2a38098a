"""Runs the real ingest app in-process against the test's own topics and schema."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.ingest import repository as repo
from services.ingest.app import Ingest, open_ingest
from services.ingest.auth import new_credential
from services.ingest.config import IngestSettings
from shared.kafka import Topics, TopicSpec, ensure_topics, kafka_admin
from tests.integration.waiting import close_within

TENANTS = ("acme", "globex")
DIRECTORY_TOKEN = "directory-token-for-tests"


@dataclass
class Running:
    ingest: Ingest
    base: str
    http: aiohttp.ClientSession
    secrets: dict[str, str]  # tenant -> secret of its credential "lms1"

    def auth(self, tenant: str = "acme") -> str:
        raw = f"{tenant}.lms1:{self.secrets[tenant]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def headers(self, tenant: str = "acme", version: str = "2.0.0") -> dict[str, str]:
        return {"Authorization": self.auth(tenant), "X-Experience-API-Version": version}

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.ingest.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)


StartIngest = Callable[..., Awaitable[Running]]


@pytest.fixture
def settings(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        partitions=2,
        http_port=0,
        max_body_bytes=64 * 1024,
        consumer_group=f"{topic_prefix}ingest",
        intake_enabled=False,
        intake_metadata_max_age_ms=500,
        relay_poll_seconds=0.2,
        retry_max_seconds=1.0,
        learner_key_salt=SecretStr("integration-salt"),
        directory_token=SecretStr(DIRECTORY_TOKEN),
    )


@pytest.fixture
async def start_ingest(
    settings: IngestSettings, kafka_cleanup: None, kafka_bootstrap: str
) -> AsyncIterator[StartIngest]:
    """``await start_ingest(**overrides)`` runs an ingest app (HTTP on a free port) until the
    test ends; tenants ``acme`` and ``globex`` each get a credential ``lms1``."""
    stack = AsyncExitStack()
    try:
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        )

        async def start(*, start_relay: bool = True, **overrides: Any) -> Running:
            merged = settings.model_copy(update=overrides)
            if merged.intake_enabled:
                async with kafka_admin(kafka_bootstrap) as admin:
                    topics = Topics(merged.topic_prefix, merged.partitions)
                    await ensure_topics(admin, [TopicSpec(topics.raw("acme"), 2)])
            ingest = await stack.enter_async_context(open_ingest(merged, start_relay=start_relay))
            # TestServer, not shared.service.serve_http: the latter passes shutdown_timeout to
            # TCPSite, which aiohttp 3.14 deprecates (a warning, so an error under pytest)
            server = await stack.enter_async_context(TestServer(ingest.app, host="127.0.0.1"))
            port = server.port
            secrets: dict[str, str] = {}
            async with ingest.pool.acquire() as conn:
                for tenant in TENANTS:
                    row, secret = new_credential(tenant, "lms1")
                    await repo.insert_credential(conn, row)
                    secrets[tenant] = secret
            return Running(ingest, f"http://127.0.0.1:{port}", http, secrets)

        yield start
    finally:
        # a teardown that hung once under load (pytest-timeout, no clue): now it says where
        await close_within(stack, 120, "ingest teardown")
