"""Learner display names: looked up from a real ingest, shown only to tokens allowed to see them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.alerts import staff_repository as staff_repo
from services.alerts.staff import hash_token, new_token
from services.ingest import repository as ingest_repo
from services.ingest.app import open_ingest
from services.ingest.auth import new_credential
from services.ingest.config import IngestSettings
from tests.integration.alerts.conftest import T0, Running, StartAlerts, progress

DIRECTORY_TOKEN = "names-test-directory-token"


def _statement(mbox: str, name: str | None) -> dict[str, Any]:
    actor: dict[str, Any] = {"mbox": mbox} | ({"name": name} if name else {})
    return {
        "id": str(uuid.uuid4()),
        "actor": actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
        "object": {"id": "https://lms.example.com/q/1"},
    }


@pytest.fixture
async def ingest(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str, kafka_cleanup: None
) -> AsyncIterator[tuple[str, dict[str, dict[str, str]]]]:
    """A real ingest (own schema) that has seen acme's Ada and a nameless learner, and globex's
    Grace; yields its base URL and each tenant's learner keys by mbox."""
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix + "ing.",
        db_schema=db_schema + "_ingest",
        partitions=1,
        http_port=0,
        intake_enabled=False,
        learner_key_salt=SecretStr("names-salt"),
        directory_token=SecretStr(DIRECTORY_TOKEN),
    )
    async with AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(open_ingest(settings, start_relay=False))
        server = await stack.enter_async_context(TestServer(ingest.app, host="127.0.0.1"))
        base = f"http://127.0.0.1:{server.port}"
        http = await stack.enter_async_context(aiohttp.ClientSession())
        people: dict[str, list[tuple[str, str | None]]] = {
            "acme": [("mailto:ada@example.com", "Ada Lovelace"), ("mailto:x@example.com", None)],
            "globex": [("mailto:grace@example.com", "Grace Hopper")],
        }
        keys: dict[str, dict[str, str]] = {}
        async with ingest.pool.acquire() as conn:
            for tenant, who in people.items():
                row, secret = new_credential(tenant, "lms1")
                await ingest_repo.insert_credential(conn, row)
                auth = base64.b64encode(f"{tenant}.lms1:{secret}".encode()).decode()
                body = orjson.dumps([_statement(m, n) for m, n in who])
                async with http.post(
                    f"{base}/xapi/statements",
                    data=body,
                    headers={
                        "Authorization": f"Basic {auth}",
                        "X-Experience-API-Version": "2.0.0",
                        "Content-Type": "application/json",
                    },
                ) as resp:
                    assert resp.status == 200, await resp.text()
                rows = await conn.fetch(
                    "SELECT ifi_value, learner_key FROM learners WHERE tenant = $1", tenant
                )
                keys[tenant] = {r["ifi_value"]: r["learner_key"] for r in rows}
        yield base, keys


async def _token(running: Running, tenant: str, name: str, *, see_names: bool) -> str:
    token = new_token()
    async with running.alerts.pool.acquire() as conn:
        assert await staff_repo.insert_token(
            conn, tenant, None, name, hash_token(token), see_names=see_names
        )
    return token


async def _get(running: Running, path: str, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with running.http.get(running.base + path, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _seed(running: Running, tenant: str, who: str) -> None:
    """A failure streak (five wrong answers): one open alert for the learner."""
    table: dict[bytes, bytes] = {}
    for i in range(5):
        env = progress(T0 + timedelta(minutes=i), tenant=tenant, who=who, correct=False)
        assert await running.apply(env, table) == "applied"


async def test_names_only_for_tokens_allowed_to_see_them(
    start_alerts: StartAlerts, ingest: tuple[str, dict[str, dict[str, str]]]
) -> None:
    base, keys = ingest
    ada, nameless = keys["acme"]["mailto:ada@example.com"], keys["acme"]["mailto:x@example.com"]
    grace = keys["globex"]["mailto:grace@example.com"]
    running = await start_alerts(ingest_url=base, ingest_directory_token=SecretStr(DIRECTORY_TOKEN))
    for tenant, who in (("acme", ada), ("acme", nameless), ("globex", grace)):
        await _seed(running, tenant, who)
    named = await _token(running, "acme", "coach-named", see_names=True)
    plain = await _token(running, "acme", "coach-plain", see_names=False)
    globex = await _token(running, "globex", "lead", see_names=True)

    assert (await _get(running, "/api/me", named))["see_names"] is True
    assert (await _get(running, "/api/me", plain))["see_names"] is False

    listed = (await _get(running, "/api/alerts", named))["items"]
    assert {a["learner_key"]: a["learner_name"] for a in listed} == {
        ada: "Ada Lovelace",
        nameless: None,
    }
    one = next(a for a in listed if a["learner_key"] == ada)
    assert (await _get(running, f"/api/alerts/{one['id']}", named))["learner_name"] == (
        "Ada Lovelace"
    )
    # without the right: no name field at all, in the list or in one alert
    listed = (await _get(running, "/api/alerts", plain))["items"]
    assert len(listed) == 2
    assert all("learner_name" not in a for a in listed)
    assert "learner_name" not in await _get(running, f"/api/alerts/{one['id']}", plain)
    # another tenant's token sees its own learner's name, never acme's
    listed = (await _get(running, "/api/alerts", globex))["items"]
    assert [(a["learner_key"], a["learner_name"]) for a in listed] == [(grace, "Grace Hopper")]


async def test_alerts_without_names_when_ingest_refuses_or_is_away(
    start_alerts: StartAlerts, ingest: tuple[str, dict[str, dict[str, str]]]
) -> None:
    base, keys = ingest
    ada = keys["acme"]["mailto:ada@example.com"]
    for url in (base, "http://127.0.0.1:9"):  # wrong token; nothing listening
        async with AsyncExitStack() as stack:
            running = await start_alerts(
                stack=stack, ingest_url=url, ingest_directory_token=SecretStr("wrong")
            )
            if url == base:
                await _seed(running, "acme", ada)
            token = await _token(running, "acme", f"c{len(url)}", see_names=True)
            listed = (await _get(running, "/api/alerts", token))["items"]
            assert [(a["learner_key"], a["learner_name"]) for a in listed] == [(ada, None)]
