"""The private PostgreSQL is stopped while statements keep arriving over HTTP.

Promise: while it is away ingest answers a retriable 503 with Retry-After (never 200, never a
500), /readyz is 503; once it is back ingest accepts again without being restarted, and the
outbox relay resumes publishing.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import orjson

from shared.kafka import kafka_consumer
from tests.integration.resilience.conftest import PrivateInfra, PrivateRun, StartPrivate
from tests.integration.waiting import eventually
from tests.unit.ingest.samples import statement


async def _post(run: PrivateRun, sid: str) -> tuple[int | str, str | None, str]:
    try:
        async with run.http.post(
            f"{run.base}/xapi/statements",
            json=statement(id=sid),
            headers=run.headers(),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as resp:
            text = (await resp.text())[:200]
            return resp.status, resp.headers.get("Retry-After"), text
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__, None, ""


async def test_database_outage_answers_503_then_resumes(
    start_private: StartPrivate, private_infra: PrivateInfra
) -> None:
    run = await start_private()
    before = str(uuid.uuid4())
    assert (await _post(run, before))[0] == 200

    started = time.monotonic()
    private_infra.stop_postgres()
    during: dict[str, tuple[int | str, str | None, str]] = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + 3.0
    while loop.time() < end:
        sid = str(uuid.uuid4())
        during[sid] = await _post(run, sid)
        await asyncio.sleep(0.1)
    async with run.http.get(f"{run.base}/readyz") as resp:
        ready_status = resp.status
        checks = (await resp.json())["checks"]
    async with run.http.get(f"{run.base}/healthz") as resp:
        alive = resp.status

    private_infra.start_postgres()
    restarted = time.monotonic()

    # resumes without restarting the service (bounded)
    after: list[str] = []

    async def accepting() -> bool:
        sid = str(uuid.uuid4())
        status = (await _post(run, sid))[0]
        if status == 200:
            after.append(sid)
        return status == 200

    await eventually(accepting, within=30, what="ingest accepting again after PostgreSQL returned")
    resumed_after = time.monotonic() - restarted

    async def ready() -> bool:
        async with run.http.get(f"{run.base}/readyz") as resp:
            return resp.status == 200

    await eventually(ready, within=30, what="ready again")

    async def drained() -> bool:
        return bool(
            await run.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )

    await eventually(drained, within=30, what="relay published what came after the outage")
    published: set[str] = set()
    want = {before, *after}
    async with kafka_consumer(
        private_infra.bootstrap, run.ingest.topics.statements, group_id=None
    ) as consumer:
        deadline = loop.time() + 20
        while loop.time() < deadline and not want <= published:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                published |= {
                    orjson.loads(r.value or b"")["payload"]["statement"]["id"] for r in records
                }
    assert want <= published, f"not published: {want - published}"

    ok_during = {sid for sid, got in during.items() if got[0] == 200}
    if ok_during:  # a 200 while the database is down must at least be durable
        archived = await run.fetchval("SELECT array_agg(statement_id::text) FROM statements")
        assert ok_during <= set(archived)
    assert alive == 200, "liveness must not depend on the database"
    assert ready_status == 503, checks
    assert checks["database"] != "ok", checks
    wrong = {sid: got for sid, got in during.items() if not (got[0] == 503 and got[1])}
    print(
        f"database outage: {len(during)} requests during, accepting again "
        f"{resumed_after:.1f}s after restart, total {time.monotonic() - started:.1f}s"
    )
    assert not wrong, (
        f"{len(wrong)} of {len(during)} requests during the database outage were not "
        f"503 + Retry-After; e.g. {next(iter(wrong.values()))}"
    )
