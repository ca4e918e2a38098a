"""The harness of the kill -9 test (``test_worker_crash.py``): its input (the classroom
simulator's statements prepared as ingest prepares them, and what they must count), and a
:class:`Run` -- ``python -m services.progress`` and ``python -m services.alerts`` as real
subprocesses under a topic prefix and schemas of their own, which the test starts, kills with
SIGKILL, restarts and reads (readiness, metrics, watermarks, committed offsets)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from services.alerts.app import migrate as migrate_alerts
from services.ingest.handlers import Prepared, authority_for, prepare
from services.progress import repository as progress_repo
from services.progress.app import migrate as migrate_progress
from services.progress.evidence import extract_raw
from services.progress.frameworks import FrameworkRegistry
from shared.db import create_pool
from shared.envelope import Envelope
from shared.framework import Framework
from shared.kafka import Topics, ensure_topics, kafka_admin, kafka_producer
from shared.xapi import XapiVersion, parse_statement
from tools.demo.metrics import parse_metrics
from tools.demo.pipeline import Pipeline
from tools.simulator.output import framework_documents
from tools.simulator.simulate import Config, simulate

SALT = "resilience-crash-salt"
PARTITIONS = 2
SIM = Config(seed=11, learners=10, days=20, tenants=2)
PACE = (25, 0.1)  # the crashed run is fed 25 statements every 0.1 s
DRAIN = 150.0  # longest wait for a run to drain, s
Key = tuple[str, ...]


class Load:
    """The input (``(key, envelope)`` in event-time order), its frameworks, and what the input
    itself says the projection must count."""

    def __init__(self) -> None:
        sim = simulate(SIM)
        self.frameworks = [
            Framework.model_validate(yaml.safe_load(text))
            for text in framework_documents(sim).values()
        ]
        prepared = [_prepare(e.tenant, e.statement) for e in sim.events]
        self.items = [(p.key, p.envelope) for p in prepared]
        registry = FrameworkRegistry(SALT)
        registry.replace_all(self.frameworks)
        self.attempts: collections.Counter[Key] = collections.Counter()
        self.statements: collections.Counter[Key] = collections.Counter()
        for p in prepared:
            env = Envelope.model_validate_json(p.envelope)
            self.statements[(env.tenant, env.learner_key)] += 1
            version = registry.at(env.tenant, env.occurred_at)
            assert version is not None
            found = extract_raw(
                env.payload["statement"], version.index, default_time=env.occurred_at
            )
            if found.kind == "attempt" and found.correct is not None:
                for competency, _weight in found.competencies:
                    self.attempts[(env.tenant, env.learner_key, competency)] += 1

    def __len__(self) -> int:
        return len(self.items)


def _prepare(tenant: str, statement: dict[str, Any]) -> Prepared:
    stmt = parse_statement(statement, version=XapiVersion.V2_0)
    at = datetime.fromisoformat(statement["timestamp"].replace("Z", "+00:00"))
    return prepare(
        stmt,
        tenant=tenant,
        version=XapiVersion.V2_0,
        stored=at + timedelta(seconds=1),
        authority=authority_for(tenant, "lms1"),
        salt=SALT,
    )


async def until(
    check: Callable[[], Awaitable[bool]],
    within: float,
    what: str,
    every: float = 0.1,
    seen: Callable[[], Awaitable[object]] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            last = f" (last seen: {await seen()})" if seen is not None else ""
            raise AssertionError(f"{what}: not within {within:.0f} s{last}")
        await asyncio.sleep(every)


class Run:
    """progress + alerts as subprocesses under a prefix and schemas of their own."""

    def __init__(self, name: str, log_dir: Path, bootstrap: str, dsn: str) -> None:
        self.pipeline = Pipeline(
            name=name,
            ports={"ingest": 0, "progress": 0, "alerts": 0},
            salt=SALT,
            log_dir=log_dir / name,
            log_level="INFO",
            extra_env={
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DATABASE_URL": dsn,
                "SKILLSTREAM_PARTITIONS": str(PARTITIONS),
                # static membership (as deployed): a restarted worker takes its partitions back
                # without waiting for the dead member's session to time out
                "PROGRESS_GROUP_INSTANCE_ID": f"{name}-progress-0",
                "ALERTS_GROUP_INSTANCE_ID": f"{name}-alerts-0",
                "PROGRESS_DB_POOL_MAX": "4",
                "ALERTS_DB_POOL_MAX": "4",
                "ALERTS_INACTIVITY_CLOCK": "event",
                "ALERTS_SCAN_SECONDS": "3600",
                "ALERTS_RELAY_POLL_SECONDS": "0.2",
            },
        )
        self.pipeline.bootstrap, self.pipeline.dsn = bootstrap, dsn
        self.topics = Topics(self.pipeline.prefix, PARTITIONS)
        self.schema = self.pipeline.schemas
        self.conn: asyncpg.Connection[Any] | None = None

    async def setup(self, load: Load) -> None:
        """Topics, both schemas migrated, the frameworks stored, the programme calendar."""
        async with kafka_admin(self.pipeline.bootstrap) as admin:
            await ensure_topics(admin, self.topics.specs())
        dsn = self.pipeline.dsn
        async with create_pool(dsn, self.schema["progress"], max_size=2) as pool:
            await migrate_progress(pool, self.schema["progress"])
            async with pool.acquire() as conn:
                for fw in load.frameworks:
                    assert await progress_repo.store_framework(conn, fw, SALT) == "stored"
        async with create_pool(dsn, self.schema["alerts"], max_size=2) as pool:
            await migrate_alerts(pool, self.schema["alerts"])
            async with pool.acquire() as conn:
                await conn.executemany(
                    "INSERT INTO programmes (tenant, programme, starts_on, ends_on)"
                    " VALUES ($1, $2, $3, $4)",
                    [
                        (fw.tenant, p.id, date(2000, 1, 1), date(2000, 1, 2))
                        for fw in load.frameworks
                        for p in fw.programmes
                    ],
                )
        self.conn = await asyncpg.connect(dsn)

    def start(self, service: str) -> None:
        self.pipeline.start_service(service)

    def kill(self, service: str) -> None:
        """``kill -9``: no shutdown code runs, nothing is flushed or committed."""
        proc = self.pipeline.procs[service]
        assert proc.poll() is None, f"{service} was not running:\n{self.pipeline.log_tail(service)}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

    async def ready(self, service: str, http: aiohttp.ClientSession, within: float = 90) -> None:
        proc = self.pipeline.procs[service]

        async def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{service} exited with {proc.returncode}:\n{self.pipeline.log_tail(service)}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(self.pipeline.url(service) + "/readyz") as resp:
                    return resp.status == 200
            return False

        await until(answers, within, f"{self.pipeline.prefix} {service} ready", every=0.3)

    async def metric(
        self, service: str, http: aiohttp.ClientSession, name: str
    ) -> dict[str, float]:
        """``name``'s samples by their labels (``k=v,...``) from the live process."""
        async with http.get(self.pipeline.url(service) + "/metrics") as resp:
            assert resp.status == 200
            samples = parse_metrics(await resp.text())
        return {
            ",".join(f"{k}={v}" for k, v in sorted(labels.items())): value
            for labels, value in samples.get(name, [])
        }

    async def q(self, service: str, sql: str) -> list[asyncpg.Record]:
        assert self.conn is not None
        await self.conn.execute(f'SET search_path TO "{self.schema[service]}"')
        return await self.conn.fetch(sql)

    async def projected(self) -> int:
        """Statements projected (the watermarks cover their offsets)."""
        rows = await self.q(
            "progress", 'SELECT coalesce(sum("offset" + 1), 0) AS n FROM watermarks'
        )
        return int(rows[0]["n"])

    async def applied(self) -> int:
        """Progress updates applied by alerts (distinct event ids)."""
        return int((await self.q("alerts", "SELECT count(*) AS n FROM inbox"))[0]["n"])

    async def uncommitted(self, service: str) -> int:
        """Records ``service`` has handled (its watermarks, written with its effects) beyond
        the offsets its consumer group committed: what a kill now makes it see again."""
        topic = self.topics.statements if service == "progress" else self.topics.progress_updates
        rows = await self.q(
            service, f"SELECT partition, \"offset\" FROM watermarks WHERE topic = '{topic}'"
        )
        handled = {r["partition"]: r["offset"] + 1 for r in rows}
        async with kafka_admin(self.pipeline.bootstrap) as admin:
            group = await admin.list_consumer_group_offsets(
                f"{self.pipeline.prefix}skillstream-{service}"
            )
        committed = {tp.partition: meta.offset for tp, meta in group.items() if tp.topic == topic}
        return sum(max(0, end - max(committed.get(p, 0), 0)) for p, end in handled.items())

    async def unpublished(self) -> int:
        rows = await self.q("alerts", "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
        return int(rows[0]["n"])

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self.pipeline.stop)
            if self.conn is not None:
                await self.conn.close()
        finally:
            await self.pipeline.cleanup()


async def publish(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]], pace: bool) -> None:
    async with kafka_producer(bootstrap, linger_ms=5) as producer:
        step, pause = PACE if pace else (len(items), 0.0)
        for i in range(0, len(items), step):
            for key, value in items[i : i + step]:
                await producer.send(topic, value, key=key)
            await producer.flush()
            await asyncio.sleep(pause)
