"""The private broker is killed (-9) while statements keep arriving over HTTP.

Promise: every answer is either 200 (the statement is durably in the PostgreSQL outbox) or a
retriable 503 with Retry-After, never 200 for a statement later lost; /readyz says not-ready while
the broker is away; once it is back every 200-statement is archived and published to
``xapi.statements`` exactly once in effect (any duplicate carries the same event_id).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import aiohttp

from shared.envelope import STATEMENT_V1, Envelope
from shared.kafka import kafka_consumer
from tests.integration.resilience.conftest import PrivateInfra, PrivateRun, StartPrivate
from tests.integration.waiting import eventually
from tests.unit.ingest.samples import statement


async def _post(run: PrivateRun, sid: str) -> tuple[int | str, str | None]:
    """Status (or the client error's name) and Retry-After of one POST."""
    try:
        async with run.http.post(
            f"{run.base}/xapi/statements",
            json=statement(id=sid),
            headers=run.headers(),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp:
            await resp.read()
            return resp.status, resp.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__, None


async def _ready(run: PrivateRun) -> tuple[int, dict[str, str]]:
    async with run.http.get(f"{run.base}/readyz") as resp:
        body = await resp.json()
        return resp.status, body["checks"]


async def test_broker_outage_during_http_intake_loses_nothing(
    start_private: StartPrivate, private_infra: PrivateInfra
) -> None:
    run = await start_private()
    statuses: dict[str, tuple[int | str, str | None]] = {}
    for _ in range(3):
        sid = str(uuid.uuid4())
        statuses[sid] = await _post(run, sid)
    assert all(s == 200 for s, _ in statuses.values()), statuses

    started = time.monotonic()
    private_infra.kill_kafka()
    ready_during: list[tuple[int, dict[str, str]]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 6.0
    while loop.time() < end:
        sid = str(uuid.uuid4())
        statuses[sid] = await _post(run, sid)
        if len(statuses) % 5 == 0:
            ready_during.append(await _ready(run))
        await asyncio.sleep(0.1)
    ready_during.append(await _ready(run))

    bad = {
        sid: got
        for sid, got in statuses.items()
        if not (got[0] == 200 or (got[0] == 503 and got[1]))
    }
    assert not bad, f"answers neither 200 nor 503+Retry-After during the outage: {bad}"
    assert all(status == 503 for status, _ in ready_during), ready_during
    assert all(checks["broker"] != "ok" for _, checks in ready_during), ready_during

    private_infra.start_kafka()
    restarted = time.monotonic()
    accepted = {sid for sid, got in statuses.items() if got[0] == 200}
    assert len(accepted) > 3, "nothing was accepted during the outage (no durable buffer used)"

    async def drained() -> bool:
        return bool(
            await run.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )

    await eventually(drained, within=60, what="outbox drained after the broker returned")
    drained_after = time.monotonic() - restarted

    archived = await run.fetchval("SELECT array_agg(statement_id::text) FROM statements")
    assert accepted <= set(archived), f"accepted but not archived: {accepted - set(archived)}"

    events: dict[str, set[str]] = defaultdict(set)
    copies: dict[str, int] = defaultdict(int)
    async with kafka_consumer(
        private_infra.bootstrap, run.ingest.topics.statements, group_id=None
    ) as consumer:
        deadline = loop.time() + 30
        while loop.time() < deadline and not accepted <= set(events):
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    env = Envelope.parse(record.value or b"", {STATEMENT_V1})
                    sid = env.payload["statement"]["id"]
                    events[sid].add(str(env.event_id))
                    copies[sid] += 1
        settle = loop.time() + 1.0
        while loop.time() < settle:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    env = Envelope.parse(record.value or b"", {STATEMENT_V1})
                    events[env.payload["statement"]["id"]].add(str(env.event_id))
                    copies[env.payload["statement"]["id"]] += 1
    missing = accepted - set(events)
    assert not missing, f"{len(missing)} accepted statements never published: {sorted(missing)}"
    split = {sid: ids for sid, ids in events.items() if len(ids) != 1}
    assert not split, f"statements published under several event ids: {split}"
    assert set(events) <= set(archived), "published statements that were never archived"
    outbox_ids = await run.fetchval("SELECT array_agg(event_id::text) FROM outbox")
    assert {next(iter(ids)) for ids in events.values()} == set(outbox_ids)

    status, checks = await _ready(run)
    assert status == 200, checks
    duplicates = sum(n - 1 for n in copies.values())
    print(
        f"broker outage: {len(accepted)} accepted, {duplicates} duplicate copies, "
        f"outbox drained {drained_after:.1f}s after restart, "
        f"total {time.monotonic() - started:.1f}s"
    )
