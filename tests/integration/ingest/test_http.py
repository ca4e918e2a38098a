from __future__ import annotations

import hashlib
import uuid
from email.utils import parsedate_to_datetime

import orjson
from aiohttp import FormData, MultipartWriter

from services.ingest.handlers import event_id_for
from shared.envelope import STATEMENT_V1, Envelope
from shared.identity import learner_key
from tests.integration.ingest.conftest import StartIngest
from tests.integration.waiting import consume
from tests.unit.ingest.samples import EMAIL, statement

VERSION = "X-Experience-API-Version"


async def test_about_needs_no_credentials(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    async with run.http.get(f"{run.base}/xapi/about") as resp:
        assert resp.status == 200
        assert await resp.json() == {"version": ["1.0.3", "2.0.0"]}
        assert resp.headers[VERSION] == "2.0.0"


async def test_version_header_is_required(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    headers = {"Authorization": run.auth()}
    async with run.http.post(f"{run.base}/xapi/statements", json=statement(), headers=headers) as r:
        assert r.status == 400
        body = await r.json()
        assert body["rule"] == "version.header_missing"
        assert r.headers[VERSION] == "2.0.0"
    headers[VERSION] = "0.9"
    async with run.http.post(f"{run.base}/xapi/statements", json=statement(), headers=headers) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "version.header_unsupported"


async def test_bad_credentials_are_401(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    wrong = dict(run.headers(), Authorization=run.auth().replace("Basic ", "Basic x"))
    cases = [
        {VERSION: "2.0.0"},
        dict(run.headers(), Authorization="Basic " + "YWNtZS5ub2JvZHk6c2VjcmV0"),
        wrong,
    ]
    for headers in cases:
        async with run.http.post(url, json=statement(), headers=headers) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
            assert resp.headers[VERSION] == "2.0.0"
    assert await run.fetchval("SELECT count(*) FROM statements") == 0


async def test_post_single_and_batch_archives_and_publishes(
    start_ingest: StartIngest, kafka_bootstrap: str
) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    async with run.http.post(url, json=statement(), headers=run.headers()) as resp:
        assert resp.status == 200
        [first] = await resp.json()
        assert resp.headers[VERSION] == "2.0.0"
    given = str(uuid.uuid4())
    batch = [statement(id=given), statement(actor={"mbox": "mailto:bob@example.com"})]
    async with run.http.post(url, json=batch, headers=run.headers()) as resp:
        assert resp.status == 200
        ids = await resp.json()
        assert ids[0] == given
        assert len(ids) == 2
    assert await run.fetchval("SELECT count(*) FROM statements WHERE tenant = 'acme'") == 3
    assert await run.fetchval("SELECT count(*) FROM learners") == 2
    records = await consume(kafka_bootstrap, run.ingest.topics.statements, 3, settle=1.0)
    assert len(records) == 3
    salt = "integration-salt"
    ada = learner_key("mbox", EMAIL, salt)
    by_id = {}
    for record in records:
        assert record.value is not None
        assert b"@example.com" not in record.value
        assert b"Lovelace" not in record.value
        env = Envelope.parse(record.value, {STATEMENT_V1})
        assert record.key == f"acme|{env.learner_key}".encode()
        by_id[env.payload["statement"]["id"]] = env
    assert set(by_id) == {first, *ids}
    assert by_id[first].learner_key == ada
    assert by_id[first].event_id == event_id_for("acme", uuid.UUID(first))
    bob = by_id[ids[1]]
    assert bob.learner_key == learner_key("mbox", "mailto:bob@example.com", salt)
    assert bob.payload["statement"]["actor"] == {
        "objectType": "Agent",
        "learner_key": bob.learner_key,
    }
    await _wait_published(run)


async def _wait_published(run: object) -> None:
    from tests.integration.ingest.conftest import Running
    from tests.integration.waiting import eventually

    assert isinstance(run, Running)

    async def done() -> bool:
        return bool(
            await run.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")
        )

    await eventually(done, what="outbox drained")


async def test_get_by_id_returns_the_stored_statement(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    sid = str(uuid.uuid4())
    url = f"{run.base}/xapi/statements"
    async with run.http.post(url, json=statement(id=sid), headers=run.headers()) as resp:
        assert resp.status == 200
    async with run.http.get(url, params={"statementId": sid}, headers=run.headers()) as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["id"] == sid
        assert body["actor"]["mbox"] == EMAIL
        assert body["authority"]["account"]["name"] == "lms1"
        stored = body["stored"]
        last_modified = parsedate_to_datetime(resp.headers["Last-Modified"])
        assert last_modified.isoformat().startswith(stored[:19])
        assert resp.headers["X-Experience-API-Consistent-Through"].endswith("Z")
        assert resp.headers[VERSION] == "2.0.0"
    missing = {"statementId": str(uuid.uuid4())}
    async with run.http.get(url, params=missing, headers=run.headers()) as resp:
        assert resp.status == 404
    async with run.http.get(url, params={"statementId": "nope"}, headers=run.headers()) as resp:
        assert resp.status == 400
    # another tenant's credentials never see it
    async with run.http.get(
        url, params={"statementId": sid}, headers=run.headers("globex")
    ) as resp:
        assert resp.status == 404
    both = {"statementId": sid, "voidedStatementId": sid}
    async with run.http.get(url, params=both, headers=run.headers()) as resp:
        assert resp.status == 400


async def test_put_same_content_is_noop_and_different_is_409(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    sid = str(uuid.uuid4())
    url = f"{run.base}/xapi/statements"
    params = {"statementId": sid}
    for _ in range(2):
        async with run.http.put(url, params=params, json=statement(), headers=run.headers()) as r:
            assert r.status == 204
            assert r.headers[VERSION] == "2.0.0"
    # equal content in another representation (offset, key order, explicit id)
    same = statement(id=sid.upper(), timestamp="2024-05-01T08:00:00.123Z")
    async with run.http.put(url, params=params, json=same, headers=run.headers()) as r:
        assert r.status == 204
    other = statement(result={"success": False})
    async with run.http.put(url, params=params, json=other, headers=run.headers()) as r:
        assert r.status == 409
        assert (await r.json())["rule"] == "id.conflict"
    async with run.http.post(url, json=statement(id=sid, verb={"id": "http://x/v"}),
                             headers=run.headers()) as r:  # fmt: skip
        assert r.status == 409
    assert await run.fetchval("SELECT count(*) FROM statements") == 1
    assert await run.fetchval("SELECT count(*) FROM outbox") == 1
    async with run.http.put(url, json=statement(), headers=run.headers()) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "statementId.missing"
    mismatch = statement(id=str(uuid.uuid4()))
    async with run.http.put(url, params=params, json=mismatch, headers=run.headers()) as r:
        assert r.status == 400


async def test_retried_post_is_a_noop(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    sent = [statement(id=str(uuid.uuid4())), statement(id=str(uuid.uuid4()))]
    for _ in range(3):
        async with run.http.post(url, json=sent, headers=run.headers()) as r:
            assert r.status == 200
    assert await run.fetchval("SELECT count(*) FROM statements") == 2
    assert await run.fetchval("SELECT count(*) FROM outbox") == 2


async def test_invalid_statement_is_400_with_violations_and_nothing_stored(
    start_ingest: StartIngest,
) -> None:
    run = await start_ingest()
    bad = statement(actor={"mbox": "ada@example.com"})
    url = f"{run.base}/xapi/statements"
    async with run.http.post(url, json=[statement(), bad], headers=run.headers()) as r:
        assert r.status == 400
        body = await r.json()
        assert body["violations"]
        violation = body["violations"][0]
        assert violation["path"].startswith("$[1].actor")
        assert violation["rule"] == "mbox.mailto"
        assert set(violation) == {"path", "rule", "message"}
    async with run.http.post(url, data=b"{not json", headers=run.headers()) as r:
        assert r.status == 400
    headers = dict(run.headers(), **{"Content-Type": "application/json"})
    async with run.http.post(url, data="\x00".join("{}"), headers=headers) as r:
        assert r.status == 400
    nul = statement(result={"response": "a\u0000b"})
    async with run.http.post(url, json=nul, headers=run.headers()) as r:
        assert r.status == 400
    text = dict(run.headers(), **{"Content-Type": "text/plain"})
    async with run.http.post(url, data=orjson.dumps(statement()), headers=text) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "content_type"
    assert await run.fetchval("SELECT count(*) FROM statements") == 0
    assert await run.fetchval("SELECT count(*) FROM outbox") == 0
    metrics = run.ingest.metrics.render().decode()
    assert (
        'skillstream_ingest_statements_rejected_total{channel="http",rule="mbox.mailto"' in metrics
    )


async def test_oversized_body_is_413(start_ingest: StartIngest) -> None:
    run = await start_ingest(max_body_bytes=2048)
    big = [statement() for _ in range(40)]
    async with run.http.post(
        f"{run.base}/xapi/statements", data=orjson.dumps(big),
        headers=dict(run.headers(), **{"Content-Type": "application/json"}),
    ) as r:  # fmt: skip
        assert r.status == 413
        assert (await r.json())["rule"] == "size"
    assert await run.fetchval("SELECT count(*) FROM statements") == 0


async def test_voiding_hides_the_target(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    target, voider = str(uuid.uuid4()), str(uuid.uuid4())
    voiding = statement(
        id=voider,
        verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
        object={"objectType": "StatementRef", "id": target},
    )
    async with run.http.post(url, json=statement(id=target), headers=run.headers()) as r:
        assert r.status == 200
    async with run.http.post(url, json=voiding, headers=run.headers()) as r:
        assert r.status == 200
    async with run.http.get(url, params={"statementId": target}, headers=run.headers()) as r:
        assert r.status == 404
    async with run.http.get(url, params={"voidedStatementId": target}, headers=run.headers()) as r:
        assert r.status == 200
        assert (await r.json())["id"] == target
    async with run.http.get(url, params={"statementId": voider}, headers=run.headers()) as r:
        assert r.status == 200
    # voiding a voiding statement is ignored
    again = dict(voiding, id=str(uuid.uuid4()), object={"objectType": "StatementRef", "id": voider})
    async with run.http.post(url, json=again, headers=run.headers()) as r:
        assert r.status == 200
    async with run.http.get(url, params={"statementId": voider}, headers=run.headers()) as r:
        assert r.status == 200
    async with run.http.get(url, params={"voidedStatementId": voider}, headers=run.headers()) as r:
        assert r.status == 404


def _multipart(stmt: dict[str, object], payload: bytes, declared: str) -> MultipartWriter:
    writer = MultipartWriter("mixed")
    writer.append_json(stmt)
    part = writer.append(payload, {"Content-Type": "text/plain"})
    part.headers["X-Experience-API-Hash"] = declared
    part.headers["Content-Transfer-Encoding"] = "binary"
    return writer


async def test_multipart_attachments_are_checked_and_stored(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    payload = b"certificate of completion"
    sha2 = hashlib.sha256(payload).hexdigest()
    attachment = {
        "usageType": "http://id.tincanapi.com/attachment/certificate_of_completion",
        "display": {"en-US": "certificate"},
        "contentType": "text/plain",
        "length": len(payload),
        "sha2": sha2,
    }
    url = f"{run.base}/xapi/statements"
    stmt = statement(attachments=[attachment])
    writer = _multipart(stmt, payload, sha2)
    async with run.http.post(url, data=writer, headers=run.headers()) as r:
        assert r.status == 200, await r.text()
    stored = await run.fetchval("SELECT content FROM attachments WHERE sha2 = $1", sha2)
    assert bytes(stored) == payload
    wrong = _multipart(stmt, b"forged", sha2)
    async with run.http.post(url, data=wrong, headers=run.headers()) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "attachment.hash_mismatch"
    async with run.http.post(url, json=stmt, headers=run.headers()) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "attachment.missing_part"
    assert await run.fetchval("SELECT count(*) FROM statements") == 1


async def test_alternate_request_syntax_for_1_0_3(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    sid = str(uuid.uuid4())
    url = f"{run.base}/xapi/statements"
    form = FormData(
        {
            "statementId": sid,
            "Authorization": run.auth(),
            "X-Experience-API-Version": "1.0.3",
            "Content-Type": "application/json",
            "content": orjson.dumps(statement()).decode(),
        }
    )
    async with run.http.post(url, params={"method": "PUT"}, data=form) as r:
        assert r.status == 204, await r.text()
        assert r.headers[VERSION] == "1.0.3"
    get = FormData(
        {"statementId": sid, "Authorization": run.auth(), "X-Experience-API-Version": "1.0.3"}
    )
    async with run.http.post(url, params={"method": "GET"}, data=get) as r:
        assert r.status == 200
        assert (await r.json())["version"] == "1.0.0"
    v2 = FormData(
        {"statementId": sid, "Authorization": run.auth(), "X-Experience-API-Version": "2.0.0"}
    )
    async with run.http.post(url, params={"method": "GET"}, data=v2) as r:
        assert r.status == 400
        assert (await r.json())["rule"] == "alternate.version"


async def test_readiness_and_metrics(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    async with run.http.get(f"{run.base}/readyz") as r:
        body = await r.json()
        assert r.status == 200, body
        assert body["checks"] == {"database": "ok", "broker": "ok", "relay": "ok"}
    async with run.http.post(
        f"{run.base}/xapi/statements", json=statement(), headers=run.headers()
    ) as r:
        assert r.status == 200
    async with run.http.get(f"{run.base}/metrics") as r:
        text = await r.text()
    assert 'skillstream_ingest_statements_accepted_total{channel="http",tenant="acme"} 1.0' in text
    assert "skillstream_ingest_http_request_duration_seconds" in text
    assert "@example.com" not in text
    async with run.http.get(
        f"{run.base}/xapi/statements", params={"verb": "http://x"}, headers=run.headers()
    ) as r:
        assert r.status == 501
