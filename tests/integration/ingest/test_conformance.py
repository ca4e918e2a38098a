"""HTTP rules found by the ADL conformance suite (CONFORMANCE.md), each with a valid and an
invalid case, and the per-tenant lenient profile end to end."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import orjson
import pytest
from aiohttp import MultipartWriter
from pydantic import SecretStr

from services.ingest import cli
from services.ingest.config import IngestSettings
from tests.integration.ingest.conftest import StartIngest
from tests.unit.ingest.samples import statement

VERSION = "X-Experience-API-Version"
CONSISTENT = "X-Experience-API-Consistent-Through"
SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jws(payload: Any, alg: str = "RS256") -> bytes:
    header = _b64(orjson.dumps({"alg": alg}))
    # the LRS checks structure, algorithm and payload; not the RSA signature (no x5c here)
    return f"{header}.{_b64(orjson.dumps(payload))}.{_b64(b'not-verified')}".encode()


def _signed(stmt: dict[str, Any], jws: bytes) -> MultipartWriter:
    signed = {
        **stmt,
        "attachments": [
            {
                "usageType": SIGNATURE,
                "display": {"en-US": "signature"},
                "contentType": "application/octet-stream",
                "length": len(jws),
                "sha2": hashlib.sha256(jws).hexdigest(),
            }
        ],
    }
    writer = MultipartWriter("mixed")
    writer.append_json(signed)
    part = writer.append(jws, {"Content-Type": "application/octet-stream"})
    part.headers["X-Experience-API-Hash"] = hashlib.sha256(jws).hexdigest()
    part.headers["Content-Transfer-Encoding"] = "binary"
    return writer


async def test_signed_statements_need_a_well_formed_rs_jws(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    stmt = statement(id=str(uuid.uuid4()), result={"duration": "PT1M0.12S"})
    # valid: payload equal to the statement (durations compared to hundredths of a second)
    payload = {**stmt, "result": {"duration": "PT1M0.1234S"}}
    async with run.http.post(url, data=_signed(stmt, _jws(payload)), headers=run.headers()) as r:
        assert r.status == 200, await r.text()
    cases = [
        (_jws(stmt, alg="HS256"), "signature.algorithm"),
        (_jws({**stmt, "verb": {"id": "http://example.com/other"}}), "signature.payload_mismatch"),
        (b"not a jws", "signature.malformed"),
    ]
    for jws, rule in cases:
        other = {**stmt, "id": str(uuid.uuid4())}
        body = _signed(other, jws)
        async with run.http.post(url, data=body, headers=run.headers()) as r:
            assert r.status == 400
            assert (await r.json())["rule"] == rule


async def test_statement_listing_pages_and_hides_voided(start_ingest: StartIngest) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for sid in ids:  # one per request: distinct stored times
        async with run.http.post(url, json=statement(id=sid), headers=run.headers()) as r:
            assert r.status == 200
    async with run.http.post(url, json=statement(), headers=run.headers("globex")) as r:
        assert r.status == 200
    seen: list[str] = []
    query: str | None = "limit=2"
    while query is not None:
        async with run.http.get(f"{url}?{query}", headers=run.headers()) as r:
            assert r.status == 200
            assert CONSISTENT in r.headers
            result = await r.json()
        seen += [s["id"] for s in result["statements"]]
        query = result["more"].split("?", 1)[1] if result["more"] else None
    assert seen == ids[::-1]  # newest first, this tenant's only
    async with run.http.get(url, params={"verb": "http://x.y/z"}, headers=run.headers()) as r:
        assert r.status == 501
    async with run.http.get(url, params={"limit": "-1"}, headers=run.headers()) as r:
        assert r.status == 400


async def test_lrs_fills_timestamp_and_answers_404_with_consistency(
    start_ingest: StartIngest,
) -> None:
    run = await start_ingest()
    url = f"{run.base}/xapi/statements"
    sid = str(uuid.uuid4())
    bare = {k: v for k, v in statement(id=sid).items() if k != "timestamp"}
    params = {"statementId": sid}
    async with run.http.put(url, params=params, json=bare, headers=run.headers()) as r:
        assert r.status == 204
    async with run.http.put(url, params=params, json=bare, headers=run.headers()) as r:
        assert r.status == 204  # a retry still matches: the filled timestamp is not compared
    async with run.http.get(url, params={"statementId": sid}, headers=run.headers()) as r:
        body = await r.json()
        assert body["timestamp"] == body["stored"]
    missing = str(uuid.uuid4())
    async with run.http.get(url, params={"statementId": missing}, headers=run.headers()) as r:
        assert r.status == 404
        assert CONSISTENT in r.headers


async def test_other_resources_and_fallback_version(start_ingest: StartIngest) -> None:
    run = await start_ingest(http_fallback_version="1.0.3")
    auth = {"Authorization": run.auth()}
    for path in ("activities", "activities/state", "agents", "agents/profile"):
        async with run.http.get(f"{run.base}/xapi/{path}", headers=auth) as r:
            assert r.status == 400, path
            assert r.headers[VERSION] == "1.0.3"  # the request did not say: the fallback
    async with run.http.get(f"{run.base}/xapi/agents", headers=run.headers()) as r:
        assert r.status == 501
        assert r.headers[VERSION] == "2.0.0"
    activities = f"{run.base}/xapi/activities"
    activity = "http://example.com/path/../a"
    params = {"activityId": activity}
    async with run.http.get(activities, params=params, headers=run.headers()) as r:
        assert r.status == 200
        assert await r.json() == {"objectType": "Activity", "id": activity}
    params = {"activityId": "not an iri"}
    async with run.http.get(activities, params=params, headers=run.headers()) as r:
        assert r.status == 400


async def test_lenient_profile_per_tenant_records_deviations(
    start_ingest: StartIngest,
    database_url: str,
    db_schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await start_ingest(profile_cache_seconds=0)
    settings = IngestSettings(database_url=SecretStr(database_url), db_schema=db_schema)
    url = f"{run.base}/xapi/statements"
    uid = str(uuid.uuid4())
    deviating = statement(
        object={"objectType": "Course", "id": uid},
        result={"score": {"raw": 0, "min": 0, "max": 0}},
    )
    async with run.http.post(url, json=deviating, headers=run.headers()) as r:
        assert r.status == 400  # strict by default
    args = ["tenants", "set-profile", "--tenant", "acme", "--profile", "lenient"]
    assert await cli.run(args, settings) == 0
    assert await cli.run(["tenants", "list"], settings) == 0
    assert "acme\tlenient" in capsys.readouterr().out
    async with run.http.post(url, json=deviating, headers=run.headers()) as r:
        assert r.status == 200, await r.text()
        [sid] = await r.json()
    async with run.http.get(url, params={"statementId": sid}, headers=run.headers()) as r:
        body = await r.json()
    assert body["object"] == {"objectType": "Activity", "id": f"urn:uuid:{uid}"}
    assert body["result"]["score"] == {"raw": 0}
    stored = await run.fetchval(
        "SELECT deviations FROM statements WHERE statement_id = $1", uuid.UUID(sid)
    )
    assert sorted(d["rule"] for d in stored) == [
        "activity.id_bare_uuid",
        "activity.object_type",
        "score.min_equals_max",
    ]
    registry = run.ingest.metrics.registry
    value = registry.get_sample_value(
        "skillstream_ingest_lenient_deviations_total",
        {"tenant": "acme", "rule": "activity.object_type"},
    )
    assert value == 1
    async with run.http.post(url, json=deviating, headers=run.headers("globex")) as r:
        assert r.status == 400  # the other tenant stays strict
    broken = statement(object={"objectType": "Course", "id": "no iri"})
    async with run.http.post(url, json=broken, headers=run.headers()) as r:
        assert r.status == 400  # only the documented deviations are repaired
        assert (await r.json())["rule"] == "iri.scheme"
