"""Group commit: concurrent POSTs share archive transactions, each answered once durable, and
one wrong request fails alone."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.ingest import repository as repo
from services.ingest.context import CONTEXT_KEY
from tests.integration.ingest.conftest import StartIngest
from tests.unit.ingest.samples import statement


async def test_concurrent_posts_share_transactions_and_a_conflict_fails_alone(
    start_ingest: StartIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_ingest(archive_concurrency=1)
    url = f"{run.base}/xapi/statements"
    taken = str(uuid.uuid4())
    async with run.http.post(url, json=statement(id=taken), headers=run.headers()) as r:
        assert r.status == 200

    calls: list[int] = []  # statements per store_statements call
    real = repo.store_statements

    async def counting(conn: Any, tenant: str, items: Any, channel: str, notify: str) -> Any:
        calls.append(len(items))
        return await real(conn, tenant, items, channel, notify)

    monkeypatch.setattr(repo, "store_statements", counting)
    bodies: list[dict[str, Any]] = [
        statement(id=str(uuid.uuid4()), object={"id": f"https://lms.example.com/c/{i}"})
        for i in range(40)
    ]
    bodies[17] = statement(id=taken, result={"success": False})  # same id, other content

    async def post(body: dict[str, Any]) -> int:
        async with run.http.post(url, json=body, headers=run.headers()) as r:
            await r.read()
            return r.status

    statuses = await asyncio.gather(*(post(b) for b in bodies))
    assert statuses[17] == 409
    assert [s for i, s in enumerate(statuses) if i != 17] == [200] * 39
    assert max(calls) > 1  # some requests were stored together
    stored = await run.fetchval("SELECT count(*) FROM statements")
    assert stored == 40  # the first one and the 39 others; the conflicting one added nothing
    assert await run.fetchval("SELECT count(*) FROM outbox") == 40
    body = await run.fetchval(
        "SELECT body->'result'->>'success' FROM statements WHERE statement_id = $1",
        uuid.UUID(taken),
    )
    assert body == "true"


async def test_a_worker_keeps_its_connection_for_calls_arriving_while_it_lingers(
    start_ingest: StartIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_ingest(archive_concurrency=1)
    url = f"{run.base}/xapi/statements"

    async def post() -> None:
        body = statement(id=str(uuid.uuid4()))
        async with run.http.post(url, json=body, headers=run.headers()) as r:
            assert r.status == 200

    await post()  # credential and profile now cached: only the archive takes connections
    archive = run.ingest.app[CONTEXT_KEY].archive
    monkeypatch.setattr(archive, "_linger", 60.0)  # however slow the machine
    acquired: list[int] = []

    class CountingPool:
        def acquire(self, *args: Any, **kwargs: Any) -> Any:
            acquired.append(1)
            return run.ingest.pool.acquire(*args, **kwargs)

    await asyncio.sleep(0.5)  # the first worker gave up lingering (default 0.2 s)
    monkeypatch.setattr(archive, "_pool", CountingPool())
    for _ in range(5):
        await post()  # one at a time: each commit is done before the next call
    assert len(acquired) == 1
    assert await run.fetchval("SELECT count(*) FROM statements") == 6
    monkeypatch.setattr(archive, "_linger", 0.0)
    await post()  # wakes the worker, which then stops lingering: the pool can close
    assert len(acquired) == 1
