"""Assembles the alerts service. Opens, in order: broker check and topics, the pool and its
migrations, the producer, the outbox relay, the webhook worker, the scanner, the Faust stream
(started and recovered), and the HTTP app; closes them in reverse.

:func:`open_alerts` yields the assembled parts (tests drive them in-process); :func:`run` serves
HTTP until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from services.alerts.agents import Stream, build_stream
from services.alerts.changes import Changes
from services.alerts.config import AlertsSettings
from services.alerts.delivery import DeliveryWorker
from services.alerts.metrics import AlertsMetrics
from services.alerts.names import LearnerNames
from services.alerts.outbox import OutboxRelay
from services.alerts.processor import Processor
from services.alerts.scanner import Scanner
from services.alerts.settings_store import SettingsStore, deadletter_record
from services.alerts.staff import StaffAuth
from services.alerts.web import AlertsContext, make_app
from shared.db import create_pool, ping
from shared.health import Health
from shared.kafka import (
    Topics,
    TopicSpec,
    ensure_topics,
    kafka_admin,
    kafka_producer,
    wait_for_broker,
)
from shared.lag import LagMonitor
from shared.migrations import apply_migrations
from shared.service import serve_http, tune_gc
from shared.streaming import failure_of, recovery_finished, running

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alerts:
    settings: AlertsSettings
    app: web.Application
    pool: asyncpg.Pool[Any]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    webhooks: DeliveryWorker
    scanner: Scanner
    processor: Processor
    stream: Stream | None
    metrics: AlertsMetrics
    topics: Topics
    changes: Changes
    detector_settings: SettingsStore


def migrations_dir() -> Any:
    return files("services.alerts") / "migrations"


async def migrate(pool: asyncpg.Pool[Any], schema: str) -> list[str]:
    async with pool.acquire() as conn:
        return await apply_migrations(conn, schema, migrations_dir())  # type: ignore[arg-type]


def deadletter_topic(topics: Topics) -> str:
    return f"{topics.progress_updates}.deadletter"


def _workers(
    settings: AlertsSettings,
    *,
    pool: asyncpg.Pool[Any],
    producer: AIOKafkaProducer,
    metrics: AlertsMetrics,
    changes: Changes,
    detector_settings: SettingsStore,
    topics: Topics,
) -> tuple[OutboxRelay, DeliveryWorker, Scanner]:
    relay = OutboxRelay(
        pool,
        producer,
        topics.alerts_events,
        metrics,
        schema=settings.db_schema,
        batch=settings.relay_batch,
        poll_seconds=settings.relay_poll_seconds,
        send_timeout=settings.relay_send_timeout_seconds,
        retry_max=settings.retry_max_seconds,
    )
    webhooks = DeliveryWorker(
        pool,
        metrics,
        schema=settings.db_schema,
        timeout=settings.webhook_timeout_seconds,
        max_attempts=settings.webhook_max_attempts,
        backoff=settings.webhook_backoff_seconds,
        backoff_max=settings.webhook_backoff_max_seconds,
        concurrency=settings.webhook_concurrency,
        poll_seconds=settings.relay_poll_seconds,
    )
    scanner = Scanner(
        pool, changes, detector_settings, metrics,
        clock=settings.inactivity_clock, interval=settings.scan_seconds,
    )  # fmt: skip
    return relay, webhooks, scanner


@asynccontextmanager
async def open_alerts(
    settings: AlertsSettings,
    registry: CollectorRegistry | None = None,
    *,
    start_workers: bool = True,
) -> AsyncIterator[Alerts]:
    """The assembled service. ``start_workers=False`` leaves relay, webhook worker and
    scanner stopped (tests call their ``*_once`` methods)."""
    metrics = AlertsMetrics(registry or CollectorRegistry())
    bootstrap = settings.kafka_bootstrap_servers
    topics = Topics(settings.topic_prefix, settings.partitions, settings.replication_factor)
    dlq = deadletter_topic(topics)
    await wait_for_broker(bootstrap)
    async with kafka_admin(bootstrap) as admin:
        await ensure_topics(
            admin, [*topics.specs(), TopicSpec(dlq, 1, {}, settings.replication_factor)]
        )
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(
            create_pool(
                settings.database_url.get_secret_value(),
                settings.db_schema,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
            )
        )
        await migrate(pool, settings.db_schema)
        metrics.watch_pool(pool)
        producer = await stack.enter_async_context(kafka_producer(bootstrap))

        async def deadletter(key: bytes | None, raw: bytes, reason: str, message: str) -> None:
            await producer.send_and_wait(dlq, deadletter_record(key, raw, reason, message), key=key)

        changes = Changes(settings.db_schema)
        detector_settings = SettingsStore(pool, settings.settings_cache_seconds)
        processor = Processor(
            pool, changes, detector_settings, metrics, deadletter,
            retry_max=settings.retry_max_seconds,
        )  # fmt: skip
        relay, webhooks, scanner = _workers(
            settings, pool=pool, producer=producer, metrics=metrics, changes=changes,
            detector_settings=detector_settings, topics=topics,
        )  # fmt: skip

        async def database() -> None:
            await ping(pool)

        async def broker() -> None:
            await wait_for_broker(bootstrap, wait=2.0)

        health = Health({"database": database, "broker": broker})
        # stopped (and their HTTP session closed) on exit even when never started
        stack.push_async_callback(webhooks.stop)
        if start_workers:
            health.add("relay", relay.check)
            health.add("webhooks", webhooks.check)
            health.add("scanner", scanner.check)
            relay.start()
            stack.push_async_callback(relay.stop)
            webhooks.start()
            scanner.start()
            stack.push_async_callback(scanner.stop)
        stream: Stream | None = None
        if settings.stream_enabled:
            stream = await _start_stream(
                stack,
                settings=settings,
                topics=topics,
                processor=processor,
                health=health,
                metrics=metrics,
            )
        auth = StaffAuth(pool)
        names: LearnerNames | None = None
        if settings.ingest_url and settings.ingest_directory_token:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            token = settings.ingest_directory_token.get_secret_value()
            names = LearnerNames(session, settings.ingest_url, token)
        context = AlertsContext(pool=pool, auth=auth, changes=changes, metrics=metrics, names=names)
        app = make_app(health, metrics, context)
        yield Alerts(
            settings, app, pool, producer, relay, webhooks, scanner, processor, stream,
            metrics, topics, changes, detector_settings,
        )  # fmt: skip


async def _start_stream(
    stack: AsyncExitStack,
    *,
    settings: AlertsSettings,
    topics: Topics,
    processor: Processor,
    health: Health,
    metrics: AlertsMetrics,
) -> Stream:
    """Start the Faust agent (stopped by ``stack``), its readiness check and its lag gauge."""
    stream = build_stream(settings, topics, processor, metrics)
    faust_app = stream.app

    async def tables() -> None:
        failure = failure_of(faust_app)
        if failure is not None:
            raise RuntimeError(f"stream crashed: {failure!r}")
        if not recovery_finished(faust_app):
            raise RuntimeError("table recovery or rebalance under way")

    health.add("stream", tables)
    await stack.enter_async_context(running(faust_app))

    def owned() -> list[tuple[str, int]]:
        return [
            (tp.topic, tp.partition)
            for tp in faust_app.consumer.assignment()
            if tp.topic == topics.progress_updates
        ]

    lag = LagMonitor(
        settings.kafka_bootstrap_servers, faust_app.conf.id, owned, metrics.consumer_lag
    )
    lag.start()
    stack.push_async_callback(lag.stop)
    return stream


async def run(settings: AlertsSettings, stop: asyncio.Event) -> None:
    async with (
        open_alerts(settings) as alerts,
        serve_http(alerts.app, settings.http_host, settings.http_port),
    ):
        tune_gc()
        log.info("alerts service ready")
        await stop.wait()
