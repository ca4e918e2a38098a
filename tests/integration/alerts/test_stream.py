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
from tests.integration.alerts.conftest import T0, StartAlerts, learner, progress
from tests.integration.waiting import consume, eventually

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
    # each change names the statement whose update caused it
    causes = [str(p.cause_statement_id) for p in payloads]
    assert causes == [e.payload["statement_id"] for e in (wrong[3], fifth, right)]
    assert {p.alert_id for p in payloads} == {alert["id"]}
    assert all(r.key == wrong[0].key for r in records)
    assert len({e.event_id for e in events}) == 3


async def test_batches_apply_many_learners_once_with_changelog_on_the_learners_partition(
    start_alerts: StartAlerts, kafka_bootstrap: str
) -> None:
    learners = [learner(100 + n) for n in range(40)]
    updates = [
        progress(T0 + timedelta(minutes=i), who=who, correct=False)
        for i in range(5)
        for who in learners
    ]
    async with AsyncExitStack() as stack:
        running = await start_alerts(
            stream_enabled=True, stack=stack, batch_max=50, batch_within_seconds=0.05
        )
        alerts = running.alerts
        assert alerts.stream is not None
        topics = alerts.topics
        await _send(kafka_bootstrap, topics.progress_updates, updates)

        async def applied() -> bool:
            return bool(await running.fetchval("SELECT count(*) FROM inbox") == len(updates))

        await eventually(applied, what=f"{len(updates)} updates applied")
        await _send(kafka_bootstrap, topics.progress_updates, updates[:60])  # redelivered
        registry = alerts.metrics.registry

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        async def counted() -> bool:
            return sample("skillstream_alerts_batch_size_sum") >= len(updates) + 60

        await eventually(counted, what="every update in an acknowledged batch")
        assert sample("skillstream_alerts_progress_updates_total", outcome="duplicate") == 60
        assert sample("skillstream_alerts_progress_updates_total", outcome="applied") == 200
        batches = sample("skillstream_alerts_batch_size_count")
        assert 2 <= batches < len(updates) / 2  # batched, not one transaction per update
        assert sample("skillstream_alerts_batch_latency_seconds_count") == batches
        rows = await running.fetch("SELECT learner_key, kind, signals FROM alerts")
        assert sorted((r["learner_key"], r["kind"], r["signals"]) for r in rows) == [
            (who, "failure_streak", 2) for who in sorted(learners)
        ]  # opened by the 4th wrong answer, updated by the 5th; nothing twice
        changelog = alerts.stream.table.changelog_topic.get_topic_name()
        marks = await running.fetch(
            'SELECT topic, partition, "offset" FROM watermarks ORDER BY partition'
        )

    source = await consume(kafka_bootstrap, topics.progress_updates, len(updates) + 60)
    # each partition's watermark (where a reassigned worker resumes) is its last record
    last_offset: dict[int, int] = {}
    for r in source:
        last_offset[r.partition] = max(r.offset, last_offset.get(r.partition, -1))
    assert [(m["topic"], m["partition"], m["offset"]) for m in marks] == [
        (topics.progress_updates, p, last_offset[p]) for p in sorted(last_offset)
    ]
    partition_of = {r.key: r.partition for r in source}
    records = await consume(kafka_bootstrap, changelog, len(learners), settle=0.5)
    assert {r.key for r in records} == {env.key for env in updates}
    # the state of each learner is on the partition of its updates (recovered with them)
    assert all(r.partition == partition_of[r.key] for r in records)
    assert len(set(partition_of.values())) == 2
    last: dict[bytes | None, bytes | None] = {r.key: r.value for r in records}
    for env in updates:
        state = orjson.loads(last[env.key] or b"{}")
        assert str(env.event_id) in state["seen"]
