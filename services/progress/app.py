"""Assembles the progress service. Opens, in order: broker check and topics, the pool and its
migrations, the framework registry and its refresher, the Faust worker (started and recovered),
then the HTTP app; closes in reverse.

:func:`open_progress` yields the assembled parts (tests drive them in-process); :func:`run`
serves HTTP until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from services.progress import repository as repo
from services.progress.agents import Worker, build_worker
from services.progress.config import ProgressSettings
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.projection import Projector
from services.progress.web import ProgressContext, make_app
from shared.db import create_pool, ping
from shared.errors import DependencyUnavailableError
from shared.health import Health
from shared.kafka import Topics, ensure_topics, kafka_admin, wait_for_broker
from shared.lag import LagMonitor
from shared.migrations import apply_migrations
from shared.service import serve_http, tune_gc
from shared.streaming import failure_of, recovery_finished, running

log = logging.getLogger(__name__)


def migrations_dir() -> Any:
    return files("services.progress") / "migrations"


async def migrate(pool: asyncpg.Pool[Any], schema: str) -> list[str]:
    async with pool.acquire() as conn:
        return await apply_migrations(conn, schema, migrations_dir())  # type: ignore[arg-type]


class RegistryRefresher:
    """Keeps a :class:`FrameworkRegistry` in step with the ``frameworks`` table (polling a
    cheap fingerprint; :meth:`refresh` is also called right after an API load)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        registry: FrameworkRegistry,
        metrics: ProgressMetrics,
        every: float,
    ) -> None:
        self._pool = pool
        self.registry = registry
        self._metrics = metrics
        self._every = every
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        async with self._pool.acquire() as conn:
            fingerprint = await repo.frameworks_fingerprint(conn)
            if fingerprint == self.registry.fingerprint:
                return False
            frameworks = await repo.load_frameworks(conn)
        self.registry.replace_all(frameworks)
        self.registry.fingerprint = fingerprint
        self._metrics.frameworks.set(self.registry.count())
        log.info("framework registry refreshed", extra={"versions": self.registry.count()})
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep the last registry, try again
                log.warning("framework refresh failed", extra={"error": repr(exc)})

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="framework-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass(frozen=True)
class Progress:
    settings: ProgressSettings
    app: web.Application
    pool: asyncpg.Pool[Any]
    worker: Worker | None
    refresher: RegistryRefresher
    metrics: ProgressMetrics
    topics: Topics


def topics_of(settings: ProgressSettings) -> Topics:
    return Topics(settings.topic_prefix, settings.partitions, settings.replication_factor)


@asynccontextmanager
async def open_progress(
    settings: ProgressSettings,
    registry: CollectorRegistry | None = None,
    *,
    start_worker: bool = True,
    app_id: str | None = None,
) -> AsyncIterator[Progress]:
    metrics = ProgressMetrics(registry or CollectorRegistry())
    bootstrap = settings.kafka_bootstrap_servers
    topics = topics_of(settings)
    await wait_for_broker(bootstrap)
    async with kafka_admin(bootstrap) as admin:
        await ensure_topics(admin, topics.specs())
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
        frameworks = FrameworkRegistry(settings.learner_key_salt.get_secret_value())
        refresher = RegistryRefresher(pool, frameworks, metrics, settings.framework_poll_seconds)
        await refresher.refresh()
        refresher.start()
        stack.push_async_callback(refresher.stop)

        async def database() -> None:
            await ping(pool)

        async def broker() -> None:
            await wait_for_broker(bootstrap, wait=2.0)

        health = Health({"database": database, "broker": broker})
        worker: Worker | None = None
        if start_worker:
            worker = build_worker(
                app_id=app_id or settings.app_id,
                bootstrap=bootstrap,
                topics=topics,
                processor=Processor(frameworks, settings.recent_ids),
                projector=Projector(pool, topics.statements, metrics),
                metrics=metrics,
                batch_max=settings.batch_max,
                batch_within=settings.batch_within_seconds,
                data_dir=settings.data_dir,
                group_instance_id=settings.group_instance_id,
            )
            faust_app = worker.app
            await stack.enter_async_context(running(faust_app))

            def owned() -> list[tuple[str, int]]:
                return [
                    (tp.topic, tp.partition)
                    for tp in faust_app.consumer.assignment()
                    if tp.topic == topics.statements
                ]

            lag = LagMonitor(
                bootstrap, faust_app.conf.id, owned, metrics.consumer_lag,
                settings.lag_interval_seconds,
            )  # fmt: skip
            lag.start()
            stack.push_async_callback(lag.stop)

            async def tables() -> None:
                failure = failure_of(faust_app)
                if failure is not None:
                    raise DependencyUnavailableError(f"worker crashed: {failure!r}")
                ok = recovery_finished(faust_app)
                metrics.recovered.set(1 if ok else 0)
                if not ok:
                    raise DependencyUnavailableError("table recovery or rebalance under way")

            health.add("tables", tables)
        context = ProgressContext(
            pool=pool,
            refresher=refresher,
            metrics=metrics,
            salt=settings.learner_key_salt.get_secret_value(),
            stalled_days=settings.stalled_days,
            stalled_attempts=settings.stalled_attempts,
        )
        app = make_app(health, metrics, context)
        yield Progress(settings, app, pool, worker, refresher, metrics, topics)


async def run(settings: ProgressSettings, stop: asyncio.Event) -> None:
    async with (
        open_progress(settings) as progress,
        serve_http(progress.app, settings.http_host, settings.http_port),
    ):
        tune_gc()
        log.info("progress service ready")
        await stop.wait()
