"""``POST /directory/names``: display names by learner key, for the alerts service only."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tests.integration.ingest.conftest import DIRECTORY_TOKEN, Running, StartIngest

BEARER = {"Authorization": f"Bearer {DIRECTORY_TOKEN}"}


def _statement(mbox: str, name: str | None) -> dict[str, Any]:
    actor: dict[str, Any] = {"objectType": "Agent", "mbox": mbox}
    if name is not None:
        actor["name"] = name
    return {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
        "object": {"id": "https://lms.example.com/a/1"},
    }


async def _post(run: Running, tenant: str, statements: list[dict[str, Any]]) -> None:
    async with run.http.post(
        f"{run.base}/xapi/statements",
        data=orjson.dumps(statements),
        headers={**run.headers(tenant), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 200, await resp.text()


async def _keys(run: Running, tenant: str) -> dict[str, str]:
    """learner key -> raw mbox, read from ingest's own table."""
    async with run.ingest.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT learner_key, ifi_value FROM learners WHERE tenant = $1", tenant
        )
    return {r["learner_key"]: r["ifi_value"] for r in rows}


async def _names(run: Running, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with run.http.post(
        f"{run.base}/directory/names", data=orjson.dumps(body), headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_names_by_key_within_the_tenant_asked_for(start_ingest: StartIngest) -> None:
    run = await start_ingest(start_relay=False)
    await _post(
        run,
        "acme",
        [
            _statement("mailto:ada@example.com", "Ada Lovelace"),
            _statement("mailto:nameless@example.com", None),
        ],
    )
    await _post(run, "globex", [_statement("mailto:grace@example.com", "Grace Hopper")])
    acme, globex = await _keys(run, "acme"), await _keys(run, "globex")
    ada = next(k for k, v in acme.items() if "ada" in v)
    nameless = next(k for k, v in acme.items() if "nameless" in v)
    (grace,) = globex

    status, body = await _names(
        run, {"tenant": "acme", "learner_keys": [ada, nameless, grace, "unknown"]}, BEARER
    )
    assert status == 200
    # the name only: never the address; another tenant's key is unknown here
    assert body == {"names": {ada: "Ada Lovelace"}}
    status, body = await _names(run, {"tenant": "globex", "learner_keys": [grace, ada]}, BEARER)
    assert (status, body) == (200, {"names": {grace: "Grace Hopper"}})


async def test_refused_without_the_token_or_with_a_bad_request(start_ingest: StartIngest) -> None:
    run = await start_ingest(start_relay=False)
    ask = {"tenant": "acme", "learner_keys": ["k"]}
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {DIRECTORY_TOKEN}"},
        {"Authorization": run.auth("acme")},  # a tenant's LMS credential is not enough
    ):
        status, body = await _names(run, ask, headers)
        assert (status, body["rule"]) == (401, "directory.token"), headers
    bad_requests: list[Any] = [
        {"tenant": "acme"},
        {"tenant": "ACME!", "learner_keys": []},
        {"tenant": "acme", "learner_keys": ["k"] * 501},
        {"tenant": "acme", "learner_keys": [], "extra": 1},
        [],
    ]
    for bad in bad_requests:
        status, body = await _names(run, bad, BEARER)
        assert (status, body["rule"]) == (400, "directory.request"), bad


async def test_no_route_without_a_configured_token(start_ingest: StartIngest) -> None:
    run = await start_ingest(start_relay=False, directory_token=None)
    async with run.http.post(
        f"{run.base}/directory/names",
        data=b'{"tenant": "acme", "learner_keys": []}',
        headers=BEARER,
    ) as resp:
        assert resp.status == 404


async def test_the_name_of_the_latest_stored_statement_is_kept(start_ingest: StartIngest) -> None:
    """A learner's display name follows their statements: a later statement renames them, the
    last one of a batch wins, a nameless one or a re-sent (duplicate) one changes nothing."""
    run = await start_ingest(start_relay=False)
    mbox = "mailto:ada@example.com"
    first = _statement(mbox, "Ada Byron")
    await _post(run, "acme", [first])
    [(key, _)] = (await _keys(run, "acme")).items()

    async def name() -> Any:
        status, body = await _names(run, {"tenant": "acme", "learner_keys": [key]}, BEARER)
        assert status == 200, body
        return body["names"].get(key)

    assert await name() == "Ada Byron"
    await _post(run, "acme", [_statement(mbox, "Ada King"), _statement(mbox, "Ada Lovelace")])
    assert await name() == "Ada Lovelace"
    await _post(run, "acme", [_statement(mbox, None), first])  # nameless, and a duplicate
    assert await name() == "Ada Lovelace"
    await _post(run, "acme", [_statement(mbox, "A. Lovelace"), first])
    assert await name() == "A. Lovelace"  # the duplicate after it is not stored again
