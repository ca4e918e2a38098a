"""What the kill -9 test (``test_worker_crash.py``) compares between its two runs: the
progress projection tables, everything the alerts service keeps (without ids and wall-clock
times, which differ by run), the distinct events on ``alerts.events``, and the end offsets the
progress watermarks must reach."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import TopicPartition

from services.progress import repository as progress_repo
from shared.envelope import ALERT_EVENT_V1, Envelope
from shared.kafka import kafka_consumer
from tests.integration.resilience.crash_run import PARTITIONS, Key, Run


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


async def end_offsets(run: Run) -> dict[int, int]:
    parts = [TopicPartition(run.topics.statements, p) for p in range(PARTITIONS)]
    async with kafka_consumer(run.pipeline.bootstrap, group_id=None) as consumer:
        ends = await consumer.end_offsets(parts)
    return {tp.partition: offset for tp, offset in ends.items()}
