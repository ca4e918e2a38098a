"""Assembles the ingest service. Opens, in order: broker check and topics, the pool and its
migrations, the producer, then the outbox relay and the raw-topic intake; closes in reverse.

:func:`open_ingest` yields the assembled parts (tests drive them in-process); :func:`run` serves
HTTP until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from services.ingest.archive import Archive
from services.ingest.auth import Authenticator
from services.ingest.config import IngestSettings
from services.ingest.context import IngestContext
from services.ingest.directory import add_routes as add_directory
from services.ingest.intake import RawIntake
from services.ingest.metrics import IngestMetrics
from services.ingest.outbox import OutboxRelay
from services.ingest.profiles import TenantProfiles
from services.ingest.web import make_app
from shared.db import create_pool, ping
from shared.health import Health
from shared.kafka import Topics, ensure_topics, kafka_admin, kafka_producer, wait_for_broker
from shared.migrations import apply_migrations
from shared.service import serve_http, tune_gc
from shared.xapi import XapiVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ingest:
    settings: IngestSettings
    app: web.Application
    pool: asyncpg.Pool[Any]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    intake: RawIntake
    metrics: IngestMetrics
    topics: Topics
    auth: Authenticator


def migrations_dir() -> Any:
    return files("services.ingest") / "migrations"


async def migrate(pool: asyncpg.Pool[Any], schema: str) -> list[str]:
    async with pool.acquire() as conn:
        return await apply_migrations(conn, schema, migrations_dir())  # type: ignore[arg-type]


@asynccontextmanager
async def open_ingest(
    settings: IngestSettings,
    registry: CollectorRegistry | None = None,
    *,
    start_relay: bool = True,
) -> AsyncIterator[Ingest]:
    metrics = IngestMetrics(registry or CollectorRegistry())
    bootstrap = settings.kafka_bootstrap_servers
    topics = Topics(settings.topic_prefix, settings.partitions)
    await wait_for_broker(bootstrap)
    async with kafka_admin(bootstrap) as admin:
        await ensure_topics(admin, topics.specs())
    async with create_pool(
        settings.database_url.get_secret_value(),
        settings.db_schema,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
    ) as pool:
        await migrate(pool, settings.db_schema)
        metrics.watch_pool(pool)
        async with kafka_producer(
            bootstrap, max_batch_size=settings.producer_batch_bytes
        ) as producer:
            archive = Archive(
                pool,
                metrics,
                settings.db_schema,
                concurrency=settings.archive_concurrency,
                group_rows=settings.archive_group_rows,
            )
            auth = Authenticator(pool, cache_seconds=settings.auth_cache_seconds)
            relay = OutboxRelay(
                pool,
                producer,
                topics.statements,
                metrics,
                schema=settings.db_schema,
                batch=settings.relay_batch,
                poll_seconds=settings.relay_poll_seconds,
                send_timeout=settings.relay_send_timeout_seconds,
                retry_max=settings.retry_max_seconds,
            )
            profiles = TenantProfiles(pool, cache_seconds=settings.profile_cache_seconds)
            intake = RawIntake(settings, archive, producer, topics, metrics, profiles=profiles)

            async def database() -> None:
                await ping(pool)

            async def broker() -> None:
                await wait_for_broker(bootstrap, wait=2.0)

            health = Health({"database": database, "broker": broker, "relay": relay.check})
            if settings.intake_enabled:
                health.add("intake", intake.check)
            context = IngestContext(
                archive=archive,
                auth=auth,
                pool=pool,
                metrics=metrics,
                salt=settings.learner_key_salt.get_secret_value(),
                max_body=settings.max_body_bytes,
                body_timeout=settings.http_body_timeout_seconds,
                profiles=profiles,
                fallback_version=XapiVersion(settings.http_fallback_version),
            )
            app = make_app(health, metrics, context)
            if settings.directory_token is not None:
                add_directory(app, pool, settings.directory_token.get_secret_value())
            if start_relay:
                relay.start()
            if settings.intake_enabled:
                intake.start()
            try:
                yield Ingest(settings, app, pool, producer, relay, intake, metrics, topics, auth)
            finally:
                await intake.stop()
                await relay.stop()


async def run(settings: IngestSettings, stop: asyncio.Event) -> None:
    async with (
        open_ingest(settings) as ingest,
        serve_http(ingest.app, settings.http_host, settings.http_port),
    ):
        tune_gc()
        log.info("ingest service ready")
        await stop.wait()
