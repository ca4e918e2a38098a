"""Authentication, tenant isolation and secrecy.

* Every route of the real aiohttp application (enumerated from its router) but ``/xapi/about``,
  ``/healthz``, ``/readyz`` and ``/metrics`` answers 401 without credentials or with wrong ones.
* One tenant's credentials never read another tenant's statements.
* After an end-to-end run of the real process (HTTP and raw Kafka intake, valid and invalid
  statements), the raw e-mail addresses, account names and display names used appear neither in
  ``xapi.statements`` nor ``xapi.deadletter`` bytes, nor in the process's logs, nor in
  ``/metrics``; secrets and Authorization headers never appear in the logs.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any

import aiohttp
import asyncpg
import orjson

from shared.kafka import (
    Topics,
    TopicSpec,
    ensure_topics,
    kafka_admin,
    kafka_consumer,
    kafka_producer,
)
from tests.e2e.ingest.conftest import Service
from tests.integration.ingest.conftest import StartIngest
from tests.integration.waiting import eventually
from tests.unit.ingest.samples import statement

PUBLIC = {"/xapi/about", "/healthz", "/readyz", "/metrics"}
VERSION = {"X-Experience-API-Version": "2.0.0"}


def _paths(route: Any) -> list[str]:
    info = route.resource.get_info()
    if "path" in info:
        return [info["path"]]
    pattern = info["pattern"].pattern
    found = re.search(r"\(\?P<\w+>([^)]*)\)", pattern)
    assert found, pattern
    return [info["formatter"].split("{")[0] + alt for alt in found.group(1).split("|")]


async def test_every_route_but_the_public_ones_needs_credentials(
    start_ingest: StartIngest,
) -> None:
    run = await start_ingest()
    routes = [(r.method, p) for r in run.ingest.app.router.routes() for p in _paths(r)]
    assert len(routes) >= 10, routes
    wrong = "Basic " + base64.b64encode(f"acme.lms1:{'x' * 43}".encode()).decode()
    problems: list[str] = []
    for method, path in routes:
        for auth in (None, wrong, "Bearer abc", run.auth("acme")[:-4] + "AAAA"):
            headers = dict(VERSION, **({"Authorization": auth} if auth else {}))
            body = orjson.dumps(statement()) if method in ("POST", "PUT") else None
            if body is not None:
                headers["Content-Type"] = "application/json"
            params = {"statementId": str(uuid.uuid4())} if method == "PUT" else {}
            async with run.http.request(
                method, f"{run.base}{path}", data=body, headers=headers, params=params
            ) as resp:
                status = resp.status
            if path in PUBLIC:
                if status == 401:
                    problems.append(f"{method} {path} is public but answered 401")
            elif status != 401:
                problems.append(f"{method} {path} with {auth and auth[:12]!r}: {status}")
    # the 1.0.3 alternate syntax: credentials inside the form
    form = aiohttp.FormData({"X-Experience-API-Version": "1.0.3", "statementId": str(uuid.uuid4())})
    async with run.http.post(
        f"{run.base}/xapi/statements", params={"method": "GET"}, data=form
    ) as resp:
        if resp.status != 401:
            problems.append(f"alternate-syntax GET without credentials: {resp.status}")
    assert not problems, problems
    assert await run.fetchval("SELECT count(*) FROM statements") == 0


async def test_one_tenant_never_reads_another_tenants_statements(
    start_ingest: StartIngest,
) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    mine = [str(uuid.uuid4()) for _ in range(3)]
    async with run.http.post(
        url, json=[statement(id=sid) for sid in mine], headers=run.headers("acme")
    ) as resp:
        assert resp.status == 200
    voided = str(uuid.uuid4())
    async with run.http.post(url, json=[statement(id=voided)], headers=run.headers("acme")) as r:
        assert r.status == 200
    voiding = statement(
        verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
        object={"objectType": "StatementRef", "id": voided},
    )
    async with run.http.post(url, json=voiding, headers=run.headers("acme")) as r:
        assert r.status == 200

    theirs = run.headers("globex")
    for sid in mine:
        async with run.http.get(url, params={"statementId": sid}, headers=theirs) as r:
            assert r.status == 404, sid
    async with run.http.get(url, params={"voidedStatementId": voided}, headers=theirs) as r:
        assert r.status == 404
    async with run.http.get(url, params={"limit": "100"}, headers=theirs) as r:
        assert r.status == 200
        assert (await r.json())["statements"] == []
    # acme's paging cursor does not open acme's listing to globex
    async with run.http.get(url, params={"limit": "1"}, headers=run.headers("acme")) as r:
        more = (await r.json())["more"]
        assert more
    async with run.http.get(f"{run.base}{more}", headers=theirs) as r:
        assert r.status == 200
        assert (await r.json())["statements"] == []
    # the same statement id in another tenant is that tenant's own: no 409 that would reveal
    # acme's statement, and acme's copy is untouched
    other = statement(id=mine[0], result={"success": False})
    async with run.http.post(url, json=other, headers=theirs) as r:
        assert r.status == 200, await r.text()
    async with run.http.get(url, params={"statementId": mine[0]}, headers=run.headers()) as r:
        assert (await r.json())["result"]["success"] is True
    async with run.http.get(url, params={"statementId": mine[0]}, headers=theirs) as r:
        assert (await r.json())["result"]["success"] is False


# --- the end-to-end scan --------------------------------------------------------------------

SECRET_EMAILS = ["Grace.Hopper.Secret@example.org", "linus.t.secret@example.net"]
SECRET_ACCOUNTS = ["acct-secret-4471", "acct-secret-9013"]
SECRET_NAMES = ["Grace Secret-Hopper", "Linus Secret-Torvalds"]


def _learners() -> list[dict[str, Any]]:
    return [
        {"mbox": f"mailto:{SECRET_EMAILS[0]}", "name": SECRET_NAMES[0]},
        {"mbox": f"mailto:{SECRET_EMAILS[1]}", "name": SECRET_NAMES[1]},
        {"account": {"homePage": "https://lms.example.com", "name": SECRET_ACCOUNTS[0]}},
        {
            "account": {"homePage": "https://lms.example.com", "name": SECRET_ACCOUNTS[1]},
            "name": SECRET_NAMES[0],
        },
    ]


def _needles() -> list[bytes]:
    values = [*SECRET_EMAILS, *SECRET_ACCOUNTS, *SECRET_NAMES]
    return [v.encode() for v in values] + [v.lower().encode() for v in SECRET_EMAILS]


async def _scan_topic(bootstrap: str, topic: str, at_least: int) -> bytes:
    seen = bytearray()
    count = 0
    async with kafka_consumer(bootstrap, topic, group_id=None) as consumer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and count < at_least:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    count += 1
                    seen += (record.key or b"") + b"\n" + (record.value or b"") + b"\n"
        settle = loop.time() + 1
        while loop.time() < settle:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    seen += (record.key or b"") + b"\n" + (record.value or b"") + b"\n"
    assert count >= at_least, f"{count} of {at_least} records on {topic}"
    return bytes(seen)


async def test_no_raw_identity_or_secret_leaks_after_an_end_to_end_run(service: Service) -> None:
    topics = Topics(service.prefix, 2)
    async with kafka_admin(service.bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(topics.raw("acme"), 2)])
    learners = _learners()
    http_ok = [statement(id=str(uuid.uuid4()), actor=who) for who in learners]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        base = f"http://127.0.0.1:{service.port}"
        async with http.post(
            f"{base}/xapi/statements", data=orjson.dumps(http_ok), headers=service.headers()
        ) as r:
            assert r.status == 200, await r.text()
        # refused ones: a bad mbox (the address itself is the problem) and a bad verb
        for bad in (
            statement(actor={"mbox": SECRET_EMAILS[0]}),
            statement(actor=learners[2], verb={"id": "not an iri"}),
        ):
            async with http.post(
                f"{base}/xapi/statements", data=orjson.dumps(bad), headers=service.headers()
            ) as r:
                assert r.status == 400
        async with http.post(  # a wrong secret for a real user
            f"{base}/xapi/statements",
            data=orjson.dumps(http_ok[0]),
            headers=dict(service.headers(), Authorization="Basic " + base64.b64encode(
                f"acme.lms1:{SECRET_EMAILS[1]}".encode()).decode()),
        ) as r:  # fmt: skip
            assert r.status == 401
        # raw Kafka intake: valid ones and a poison (dead-lettered)
        raw_ok = [statement(id=str(uuid.uuid4()), actor=who) for who in learners]
        async with kafka_producer(service.bootstrap) as producer:
            await producer.send_and_wait(topics.raw("acme"), orjson.dumps(raw_ok))
            await producer.send_and_wait(
                topics.raw("acme"), orjson.dumps(statement(actor={"mbox": SECRET_EMAILS[1]}))
            )
        expected = len(http_ok) + len(raw_ok)
        conn = await asyncpg.connect(service.dsn, server_settings={"search_path": service.schema})
        try:

            async def all_published() -> bool:
                done = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
                )
                return bool(done >= expected)

            await eventually(all_published, within=45, what="end-to-end statements published")
        finally:
            await conn.close()
        async with http.get(f"{base}/metrics") as r:
            metrics = await r.read()
    statements_bytes = await _scan_topic(service.bootstrap, topics.statements, expected)
    deadletter_bytes = await _scan_topic(service.bootstrap, topics.deadletter, 1)
    logs = service.logs().encode()
    assert logs, "the process logged nothing at all"

    leaks: list[str] = []
    for where, data in (
        ("xapi.statements", statements_bytes),
        ("xapi.deadletter (outside the base64 original)", _without_originals(deadletter_bytes)),
        ("logs", logs),
        ("/metrics", metrics),
    ):
        leaks += [f"{needle.decode()!r} in {where}" for needle in _needles() if needle in data]
    for tenant, secret in service.secrets.items():
        if secret.encode() in logs:
            leaks.append(f"the secret of {tenant}.lms1 in the logs")
        if service.auth(tenant).split()[1].encode() in logs:
            leaks.append(f"the Authorization header of {tenant}.lms1 in the logs")
    assert not leaks, leaks


def _without_originals(data: bytes) -> bytes:
    """Dead-letter records with their ``original`` field (the raw record, base64) blanked: it is
    the raw input kept for repair, checked separately in the report."""
    out = bytearray()
    for line in data.split(b"\n"):
        try:
            body = orjson.loads(line)
        except orjson.JSONDecodeError:
            out += line + b"\n"
            continue
        if isinstance(body, dict):
            body.pop("original", None)
        out += orjson.dumps(body) + b"\n"
    return bytes(out)
