"""Progress updates through Kafka and the Faust agent into alert rows and alerts.events;
redelivery and a worker restart produce no duplicate alert; a poison message is dead-lettered."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta

import orjson
import pytest

from services.alerts.app import deadletter_topic
from shared.alert_events import AlertEvent
from shared.envelope import ALERT_EVENT_V1, Envelope
from shared.kafka import kafka_producer
from tests.integration.alerts.conftest import T0, StartAlerts, consume, eventually, progress

pytestmark = pytest.mark.timeout(90)


async def _send(bootstrap: str, topic: str, envs: list[Envelope]) -> None:
    async with kafka_producer(bootstrap) as producer:
        for env in envs:
            await producer.send(topic, env.to_bytes(), key=env.key)
        await producer.flush()


async def test_stream_to_alerts_with_redelivery_and_restart(
    start_alerts: StartAlerts, kafka_bootstrap: str
) -> None:
    wrong = [progress(T0 + timedelta(minutes=i), correct=False) for i in range(4)]
    async with AsyncExitStack() as first:
        running = await start_alerts(stream_enabled=True, start_workers=True, stack=first)
        topics = running.alerts.topics
        await _send(kafka_bootstrap, topics.progress_updates, wrong)

        async def opened() -> bool:
            n = await running.fetchval("SELECT count(*) FROM inbox")
            return bool(n == 4)

        await eventually(opened, what="4 updates applied")
        rows = await running.fetch("SELECT * FROM alerts")
        assert [(r["kind"], r["status"], r["competency"]) for r in rows] == [
            ("failure_streak", "open", "py.basics")
        ]
        evidence = rows[0]["evidence"]
        assert evidence["statement_ids"] == [e.payload["statement_id"] for e in wrong]
        # redelivery: the same four envelopes again
        await _send(kafka_bootstrap, topics.progress_updates, wrong)
        poison = b'{"schema": "skillstream.progress_update.v9"}'
        async with kafka_producer(kafka_bootstrap) as producer:
            await producer.send_and_wait(topics.progress_updates, poison, key=b"acme|x")
        dead = await consume(kafka_bootstrap, deadletter_topic(topics), 1)
        assert orjson.loads(dead[0].value or b"")["reason"] == "invalid_message"

    # a new worker with the same app id recovers the learner state from the changelog
    async with AsyncExitStack() as second:
        running = await start_alerts(stream_enabled=True, start_workers=True, stack=second)
        await _send(kafka_bootstrap, topics.progress_updates, wrong[:2])  # redelivered again
        fifth = progress(T0 + timedelta(minutes=5), correct=False)
        right = progress(T0 + timedelta(minutes=6), correct=True)
        await _send(kafka_bootstrap, topics.progress_updates, [fifth, right])

        async def resolved() -> bool:
            rows = await running.fetch("SELECT status FROM alerts")
            return [r["status"] for r in rows] == ["resolved"]

        await eventually(resolved, what="auto-resolution")
        [alert] = await running.fetch("SELECT * FROM alerts")
        assert alert["signals"] == 2  # opened by the 4th wrong answer, updated by the 5th
        assert alert["resolution"] == "auto"
        assert alert["resolved_at"] == right.occurred_at
        assert await running.fetchval("SELECT count(*) FROM inbox") == 6
        history = await running.fetch("SELECT action, actor FROM alert_history ORDER BY id")
        assert [h["action"] for h in history] == ["opened", "updated", "resolved"]
        assert {h["actor"] for h in history} == {"system"}

        records = await consume(kafka_bootstrap, topics.alerts_events, 3, settle=0.5)
    events = [Envelope.parse(r.value or b"", {ALERT_EVENT_V1}) for r in records]
    payloads = [AlertEvent.model_validate(e.payload) for e in events]
    assert [p.action for p in payloads] == ["opened", "updated", "resolved"]
    assert {p.alert_id for p in payloads} == {alert["id"]}
    assert all(r.key == wrong[0].key for r in records)
    assert len({e.event_id for e in events}) == 3
