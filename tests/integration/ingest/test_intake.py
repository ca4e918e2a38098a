from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from services.ingest.archive import Archive
from shared.envelope import STATEMENT_V1, Envelope
from shared.kafka import TopicSpec, ensure_topics, kafka_admin, kafka_producer
from tests.integration.ingest.conftest import StartIngest
from tests.integration.waiting import consume, eventually
from tests.unit.ingest.samples import statement


async def test_raw_records_are_archived_published_and_dead_lettered(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    run = await start_ingest(intake_enabled=True)
    raw_topic = run.ingest.topics.raw("acme")
    valid = orjson.dumps([statement(), statement(id=str(uuid.uuid4()))])
    invalid = orjson.dumps(statement(verb={"id": "not an iri"}))
    v1 = orjson.dumps(statement())
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(raw_topic, valid, key=b"k", partition=0)
        await producer.send_and_wait(raw_topic, invalid, partition=0)
        await producer.send_and_wait(
            raw_topic, v1, partition=1, headers=[("X-Experience-API-Version", b"1.0.3")]
        )
        await producer.send_and_wait(raw_topic, b"{broken", partition=1)

    async def archived() -> bool:
        return bool(await run.fetchval("SELECT count(*) = 3 FROM statements"))

    await eventually(archived, within=45, what="3 raw statements archived")
    events = await consume(kafka_bootstrap, run.ingest.topics.statements, 3, settle=1.0)
    assert len(events) == 3
    for event in events:
        assert event.value is not None
        env = Envelope.parse(event.value, {STATEMENT_V1})
        assert env.tenant == "acme"
        assert b"@example.com" not in event.value
    assert await run.fetchval("SELECT count(*) FROM statements WHERE channel = 'kafka'") == 3
    versions = await run.fetchval("SELECT array_agg(DISTINCT body->>'version') FROM statements")
    assert sorted(versions) == ["1.0.0", "2.0.0"]

    dead = await consume(kafka_bootstrap, run.ingest.topics.deadletter, 2, settle=0.5)
    assert len(dead) == 2
    bodies = sorted((orjson.loads(d.value or b"") for d in dead), key=lambda b: b["rule"])
    by_original = {base64.b64decode(b["original"]): b for b in bodies}
    bad = by_original[invalid]
    assert bad["reason"] == "invalid_statement"
    assert bad["rule"] == "iri.scheme"
    assert bad["violations"][0]["path"] == "$.verb.id"
    assert bad["source"] == {"topic": raw_topic, "partition": 0, "offset": 1}
    assert bad["tenant"] == "acme"
    broken = by_original[b"{broken"]
    assert broken["rule"] == "json.invalid"
    assert broken["source"]["partition"] == 1

    # a replay (a second consumer group reads the same records again) adds nothing
    replay = await start_ingest(intake_enabled=True, consumer_group=f"{uuid.uuid4()}-replay")
    assert replay.ingest.pool is not run.ingest.pool

    async def replayed() -> bool:
        parts = replay.ingest.intake.assigned
        if len(parts) < 2:
            return False
        metrics = replay.ingest.metrics.render().decode()
        return metrics.count('skillstream_ingest_deadletter_records_total{rule="') >= 2

    await eventually(replayed, within=45, what="replay consumed")
    assert await run.fetchval("SELECT count(*) FROM statements") == 3
    assert await run.fetchval("SELECT count(*) FROM outbox") == 3


async def test_a_raw_record_whose_id_is_stored_with_other_content_fails_alone(
    start_ingest: StartIngest, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_ingest()  # HTTP only: stores the statement the raw record will conflict with
    taken = str(uuid.uuid4())
    url = f"{run.base}/xapi/statements"
    async with run.http.post(url, json=statement(id=taken), headers=run.headers()) as r:
        assert r.status == 200
    raw_topic = run.ingest.topics.raw("acme")
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(raw_topic, 2)])
    records = [
        statement(id=str(uuid.uuid4())),
        statement(id=taken, result={"success": False}),  # same id, other content
        statement(id=str(uuid.uuid4())),
        [statement(id=str(uuid.uuid4())), statement(id=str(uuid.uuid4()))],
    ]
    async with kafka_producer(kafka_bootstrap) as producer:
        for record in records:
            await producer.send_and_wait(raw_topic, orjson.dumps(record), partition=0)

    batches: list[int] = []  # records per accept_records call
    real = Archive.accept_records

    async def counting(self: Archive, tenant: str, recs: Any) -> Any:
        batches.append(len(recs))
        return await real(self, tenant, recs)

    monkeypatch.setattr(Archive, "accept_records", counting)
    await start_ingest(intake_enabled=True)  # the records wait on the topic: one poll takes them

    async def archived() -> bool:
        return bool(await run.fetchval("SELECT count(*) = 5 FROM statements"))

    await eventually(archived, within=45, what="4 raw statements archived next to the first")
    assert batches[0] == 4  # the conflict was found inside one batch: the others were kept
    dead = await consume(kafka_bootstrap, run.ingest.topics.deadletter, 1, settle=0.5)
    assert len(dead) == 1
    body = orjson.loads(dead[0].value or b"")
    assert (body["rule"], body["source"]["offset"]) == ("id.conflict", 1)
    assert await run.fetchval("SELECT count(*) FROM outbox") == 5
    success = await run.fetchval(
        "SELECT body->'result'->>'success' FROM statements WHERE statement_id = $1",
        uuid.UUID(taken),
    )
    assert success == "true"
