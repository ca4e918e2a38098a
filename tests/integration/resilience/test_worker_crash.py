"""kill -9 of the progress worker and of the alerts worker mid-stream, against an undisturbed run.

Two runs of ``python -m services.progress`` and ``python -m services.alerts`` (real subprocesses,
static group membership as deployed) on the shared servers, each with a topic prefix and schemas
of its own, get the same deterministic input: the classroom simulator's statements, prepared as
ingest prepares them and published to ``xapi.statements``. The *reference* run gets it all at
once and is left alone. The *crashed* run gets it at a steady pace; once a quarter of it is
projected the progress worker is killed with SIGKILL and restarted (publishing goes on), and once
about half the progress updates are applied the alerts worker is killed and restarted; each kill
waits for a moment when the worker has handled records its group has not committed yet (its
watermarks are ahead of the committed offsets), so the restarted worker is sure to see work
again. When both
runs have drained:

* progress: every projection table is equal to the reference's, every watermark is at the end
  of its partition, the attempts per learner x competency are the number of attempt statements
  (counted from the input with the framework's evidence rules, not by the worker) and the events
  per learner the number of statements: nothing lost, nothing counted twice;
* alerts: the same alerts (one that is not resolved per learner x kind x competency), with the
  same lifecycle histories, activity, clocks and inbox as the reference; every history entry was
  published on ``alerts.events`` (copies of one event id are identical: delivery is
  at-least-once, readers deduplicate by event id), and the distinct events are the reference's;
* the restarted workers did see redelivered work (so the kills did hit the stream mid-way).

The inactivity *scanner* raises by the event clock of the moment it runs (at every start, so
twice more in the crashed run): a programme calendar outside the simulated weeks keeps it quiet
here; the stream's own inactivity path (by event time) still runs in both runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import yaml
from aiokafka import TopicPartition

from services.alerts.app import migrate as migrate_alerts
from services.ingest.handlers import Prepared, authority_for, prepare
from services.progress import repository as progress_repo
from services.progress.app import migrate as migrate_progress
from services.progress.evidence import extract_raw
from services.progress.frameworks import FrameworkRegistry
from shared.db import create_pool
from shared.envelope import ALERT_EVENT_V1, Envelope
from shared.framework import Framework
from shared.kafka import Topics, ensure_topics, kafka_admin, kafka_consumer, kafka_producer
from shared.xapi import XapiVersion, parse_statement
from tools.demo.metrics import parse_metrics
from tools.demo.pipeline import ROOT, Pipeline
from tools.demo.processes import terminate_with_parent
from tools.simulator.output import framework_documents
from tools.simulator.simulate import Config, simulate

pytestmark = pytest.mark.timeout(240)

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
        pipeline = self.pipeline
        assert pipeline.log_dir is not None
        pipeline.log_dir.mkdir(parents=True, exist_ok=True)
        log = pipeline.log_path(service).open("ab")
        old = pipeline._logs.pop(service, None)
        if old is not None:
            old.close()
        pipeline._logs[service] = log
        pipeline.procs[service] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            env=pipeline.env(service),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent(),  # noqa: PLW1509 - one prctl call
        )

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


# --- the state compared ------------------------------------------------------------------------


async def progress_state(run: Run) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in progress_repo.PROJECTION_TABLES:
        if table != "watermarks":  # named by topic: compared with each run's own partitions
            rows = await run.q("progress", f"SELECT * FROM {table}")
            out[table] = sorted(tuple(r.values()) for r in rows)
    return out


ALERT_KEY = "a.tenant, a.learner_key, a.kind, a.competency, a.first_seen_at"
ALERT_COLUMNS = (
    "tenant, learner_key, kind, competency, programme, business_unit, severity, support, status,"
    " team, assignee, snoozed_until, evidence::text, signals, first_seen_at, last_seen_at,"
    " resolved_at, resolution, note, version"
)


async def alerts_state(run: Run) -> dict[str, Any]:
    """Everything alerts keeps, without ids and wall-clock times (which differ by run)."""
    alerts = await run.q("alerts", f"SELECT {ALERT_COLUMNS} FROM alerts")
    history: dict[Key, list[tuple[Any, ...]]] = {}
    for r in await run.q(
        "alerts",
        f"SELECT {ALERT_KEY}, h.action, h.actor, h.from_status, h.to_status, h.details::text"
        " FROM alert_history h JOIN alerts a ON a.id = h.alert_id ORDER BY h.id",
    ):
        values = tuple(r.values())
        history.setdefault(tuple(map(str, values[:5])), []).append(values[5:])
    return {
        "alerts": sorted(tuple(r.values()) for r in alerts),
        "history": history,
        "activity": sorted(
            tuple(r.values()) for r in await run.q("alerts", "SELECT * FROM learner_activity")
        ),
        "inbox": sorted(r["event_id"] for r in await run.q("alerts", "SELECT event_id FROM inbox")),
        "event_clock": [
            tuple(r.values()) for r in await run.q("alerts", "SELECT * FROM event_clock")
        ],
        "partition_clock": sorted(
            tuple(r.values()) for r in await run.q("alerts", "SELECT * FROM partition_clock")
        ),
    }


async def alert_events(run: Run, history_ids: set[Any]) -> list[tuple[Any, ...]]:
    """The distinct events on ``alerts.events`` (checked against the history's event ids), as
    comparable tuples (key, event time, payload without the alert id)."""
    seen: dict[str, bytes] = {}
    async with kafka_consumer(run.pipeline.bootstrap, run.topics.alerts_events, group_id=None) as c:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(seen) < len(history_ids) and loop.time() < deadline:
            for records in (await c.getmany(timeout_ms=300)).values():
                for record in records:
                    env = Envelope.parse(record.value or b"", {ALERT_EVENT_V1})
                    first = seen.setdefault(str(env.event_id), record.value or b"")
                    assert first == record.value, f"event {env.event_id} published with two bodies"
    assert set(seen) == {str(i) for i in history_ids}, "alerts.events != the alert history"
    out = []
    for raw in seen.values():
        env = Envelope.parse(raw, {ALERT_EVENT_V1})
        payload = {k: v for k, v in env.payload.items() if k != "alert_id"}
        out.append((env.key, env.occurred_at, orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)))
    return sorted(out)


# --- the test ----------------------------------------------------------------------------------


async def test_kill_9_progress_and_alerts_workers_mid_stream(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    load = Load()
    n = len(load)
    calm = Run("calm", tmp_path, kafka_bootstrap, database_url)
    hit = Run("crash", tmp_path, kafka_bootstrap, database_url)
    feeding: asyncio.Task[None] | None = None
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(calm.setup(load), hit.setup(load))
            for run in (calm, hit):
                run.start("progress")
                run.start("alerts")
            for run in (calm, hit):
                await run.ready("progress", http)
                await run.ready("alerts", http)
            await publish(kafka_bootstrap, calm.topics.statements, load.items, pace=False)
            feeding = asyncio.create_task(
                publish(kafka_bootstrap, hit.topics.statements, load.items, pace=True)
            )

            # progress: killed once a quarter is projected, while statements keep coming, at a
            # moment when projected statements are not committed yet (so it sees them again)
            async def quarter() -> bool:
                return await hit.projected() >= n // 4 and await hit.uncommitted("progress") > 0

            await until(quarter, 60, "a quarter of the statements projected (crashed run)")
            hit.kill("progress")
            killed_at = await hit.projected()
            assert killed_at < n, "the progress worker had finished before it was killed"
            hit.start("progress")
            await hit.ready("progress", http)

            # the reference: everything projected; its update count is what alerts must apply
            async def calm_progress_done() -> bool:
                processed = await calm.metric(
                    "progress", http, "skillstream_progress_events_processed_total"
                )
                return await calm.projected() == n and sum(processed.values()) == n

            await until(calm_progress_done, DRAIN, "reference run projected")
            published = await calm.metric(
                "progress", http, "skillstream_progress_updates_published_total"
            )
            updates = sum(published.values())
            assert updates >= n

            # alerts: killed once about half the updates are applied
            async def half() -> bool:
                return await hit.applied() >= updates // 2 and await hit.uncommitted("alerts") > 0

            await until(half, DRAIN, "half the updates applied (crashed run)")
            hit.kill("alerts")
            applied_at = await hit.applied()
            assert applied_at < updates, "the alerts worker had finished before it was killed"
            hit.start("alerts")
            await hit.ready("alerts", http)
            await feeding

            for run in (calm, hit):

                async def counts(run: Run = run) -> tuple[int, int, int]:
                    return await run.projected(), await run.applied(), await run.unpublished()

                async def drained(
                    counts: Callable[[], Awaitable[tuple[int, int, int]]] = counts,
                ) -> bool:
                    return await counts() == (n, updates, 0)

                await until(
                    drained,
                    DRAIN,
                    f"{run.pipeline.prefix} drained to {(n, updates, 0)}",
                    seen=counts,
                )

            # the restarted workers did get work again that was done before the kill
            again = await hit.metric(
                "progress", http, "skillstream_progress_statements_redelivered_total"
            )
            skipped = await hit.metric(
                "progress", http, "skillstream_progress_projection_skipped_total"
            )
            outcomes = await hit.metric("alerts", http, "skillstream_alerts_progress_updates_total")
            assert sum(again.values()) + sum(skipped.values()) > 0, (again, skipped)
            assert outcomes.get("outcome=duplicate", 0) > 0, outcomes

            # --- progress: equal projections; nothing lost, nothing counted twice ----------
            for run in (calm, hit):
                marks = await run.q("progress", 'SELECT partition, "offset" FROM watermarks')
                ends = await end_offsets(run)
                assert {r["partition"]: r["offset"] + 1 for r in marks} == ends
                counted = await run.q(
                    "progress",
                    "SELECT tenant, learner_key, competency, attempts FROM learner_competency",
                )
                attempts = {(r[0], r[1], r[2]): r[3] for r in counted if r[3]}
                wrong = {
                    k: (v, load.attempts.get(k))
                    for k, v in attempts.items()
                    if v != load.attempts.get(k)
                } | {k: (None, v) for k, v in load.attempts.items() if k not in attempts}
                assert not wrong, f"{run.pipeline.prefix} attempts (counted, in the input): {wrong}"
                activity = await run.q(
                    "progress", "SELECT tenant, learner_key, events FROM learner_activity"
                )
                assert {(r[0], r[1]): r[2] for r in activity} == dict(load.statements)

            expected = await progress_state(calm)
            got = await progress_state(hit)
            for table, table_rows in expected.items():
                assert got[table] == table_rows, f"progress.{table} differs after the crash"
            # --- alerts: the same alerts and lifecycles, no duplicate ----------------------
            want, have = await alerts_state(calm), await alerts_state(hit)
            assert want["alerts"], "the input raised no alert: the comparison would be empty"
            for part in want:
                assert have[part] == want[part], f"alerts {part} differ after the crash"
            doubles = await hit.q(
                "alerts",
                "SELECT tenant, learner_key, kind, competency FROM alerts"
                " WHERE status <> 'resolved' GROUP BY 1, 2, 3, 4 HAVING count(*) > 1",
            )
            assert doubles == []
            events = []
            for run in (calm, hit):
                ids = {
                    r["event_id"]
                    for r in await run.q("alerts", "SELECT event_id FROM alert_history")
                }
                events.append(await alert_events(run, ids))
            assert events[1] == events[0]
    finally:
        if feeding is not None and not feeding.done():
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
        await asyncio.gather(calm.close(), hit.close())


async def end_offsets(run: Run) -> dict[int, int]:
    parts = [TopicPartition(run.topics.statements, p) for p in range(PARTITIONS)]
    async with kafka_consumer(run.pipeline.bootstrap, group_id=None) as consumer:
        ends = await consumer.end_offsets(parts)
    return {tp.partition: offset for tp, offset in ends.items()}
