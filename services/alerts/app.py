"""Assembles the alerts service: opens its pool and checks, serves HTTP, closes all in order."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from services.alerts.config import AlertsSettings
from shared.db import create_pool, ping
from shared.health import Health
from shared.http import ops_app
from shared.kafka import wait_for_broker
from shared.metrics import BaseMetrics
from shared.service import serve_http

log = logging.getLogger(__name__)


async def run(settings: AlertsSettings, stop: asyncio.Event) -> None:
    registry = CollectorRegistry()
    metrics = BaseMetrics("alerts", registry)
    await wait_for_broker(settings.kafka_bootstrap_servers)
    dsn = settings.database_url.get_secret_value()
    async with create_pool(
        dsn, settings.db_schema, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    ) as pool:
        metrics.watch_pool(pool)

        async def database() -> None:
            await ping(pool)

        async def broker() -> None:
            await wait_for_broker(settings.kafka_bootstrap_servers, wait=2.0)

        health = Health({"database": database, "broker": broker})
        app = ops_app(health, metrics)
        async with serve_http(app, settings.http_host, settings.http_port):
            log.info("alerts service ready")
            await stop.wait()
