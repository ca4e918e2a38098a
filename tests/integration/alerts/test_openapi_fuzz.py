"""Schemathesis against the alerts staff API's own ``/openapi.json``, on the real database.

The app runs in-process (on its own loop thread, see :mod:`tests.integration.fuzzing`) with the
alerts of ``test_api``'s seed (two tenants, a team, four alerts) and a staff token; half of the
generated alert ids are real ones, so reads and lifecycle actions reach real rows, not only
404s. Every operation gets positive and negative cases, each checked for: no 5xx, documented
status code, body matching the documented schema, documented content type, invalid input
refused, and auth enforced (again without a token and with a wrong one: 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer

from services.alerts.app import open_alerts
from services.alerts.config import AlertsSettings
from tests.integration.alerts.conftest import Running, learner
from tests.integration.alerts.test_api import _seed as seed_alerts
from tests.integration.fuzzing import CHECKS, Served, fuzz, fuzz_config, serve_in_thread

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def alerts_api(settings: AlertsSettings, kafka_cleanup: None) -> Iterator[Served]:
    @asynccontextmanager
    async def running() -> AsyncIterator[Running]:
        async with (
            open_alerts(settings, start_workers=False) as alerts,
            TestServer(alerts.app, host="127.0.0.1") as server,
            aiohttp.ClientSession() as http,
        ):
            yield Running(alerts, f"http://127.0.0.1:{server.port}", http)

    with serve_in_thread(running) as served:
        yield served


async def _prepare(running: Running) -> tuple[str, list[str]]:
    """The seeded alerts and a token of acme (no team); returns the token and every alert id
    (globex's too: the fuzzer must see them as 404s)."""
    await seed_alerts(running)
    token = await running.token("acme", "fuzz")
    ids = [str(r["id"]) for r in await running.fetch("SELECT id FROM alerts ORDER BY id")]
    return token, ids


@pytest.fixture
def alerts_schema(alerts_api: Served) -> schemathesis.BaseSchema:
    running: Running = alerts_api.value
    token, ids = alerts_api.run(_prepare(running))
    assert len(ids) == 4
    # the document as the service serves it, not the module: what clients actually read
    return schemathesis.openapi.from_url(
        f"{running.base}/openapi.json",
        config=fuzz_config(
            token,
            {
                "alerts": ids,
                "learners": [learner(1), learner(2)],
                "programmes": ["prog-a", "prog-b"],
                "kinds": ["failure_streak", "gaming"],
            },
            {
                "path.alert_id": "alerts",
                "query.learner": "learners",
                "query.programme": "programmes",
                "query.kind": "kinds",
            },
        ),
    )


async def _reopen(running: Running) -> None:
    """Every alert back to open, so the actions fuzzed after ``resolve`` reach open alerts."""
    async with running.alerts.pool.acquire() as conn:
        await conn.execute(
            "UPDATE alerts SET status = 'open', resolved_at = NULL, resolution = NULL,"
            " snoozed_until = NULL"
        )


def test_every_operation_conforms_to_its_openapi_document(
    alerts_api: Served, alerts_schema: schemathesis.BaseSchema, subtests: pytest.Subtests
) -> None:
    seen = fuzz(alerts_schema, subtests, reset=lambda: alerts_api.run(_reopen(alerts_api.value)))
    print({label: dict(codes) for label, codes in seen.items()})
    assert len(seen) == 7
    for label, codes in seen.items():
        # the token was sent and real rows were reached: every operation answered 2xx
        # sometimes; snooze at least 409 (a real alert, refused by its lifecycle): hypothesis
        # draws `until` mostly in the past, so a valid one on a real alert is luck (the
        # lifecycle tests snooze for real)
        reached = [c for c in codes if 200 <= c < 300 or (c == 409 and label.endswith("/snooze"))]
        assert reached, (label, codes)
        if label != "GET /api/me":  # the only operation without inputs
            assert any(400 <= code < 500 for code in codes), (label, codes)


def test_refusals_are_documented_401s(alerts_api: Served) -> None:
    """Without a token, with a wrong one, or with a malformed header: 401 with the documented
    error body and a challenge, on every operation (not only the ones the fuzzer reached)."""
    running: Running = alerts_api.value
    token, ids = alerts_api.run(_prepare(running))
    doc: dict[str, Any] = requests.get(f"{running.base}/openapi.json", timeout=10).json()
    for path, methods in doc["paths"].items():
        url = running.base + path.replace("{alert_id}", ids[0])
        for method in methods:
            for header in (None, "Bearer sst_nope", "Basic dG9rOng=", f"Bearer{token}", "Bearer "):
                headers = {} if header is None else {"Authorization": header}
                r = requests.request(method, url, headers=headers, timeout=10)
                assert r.status_code == 401, (method, path, header, r.status_code)
                assert r.headers["Content-Type"].startswith("application/json")
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert set(r.json()) == {"error", "reason"}
                assert "401" in methods[method]["responses"]


def test_edge_cases_the_fuzzer_found_are_refused_not_crashed(
    alerts_api: Served, alerts_schema: schemathesis.BaseSchema
) -> None:
    """Each of these was a 500 (an offset beyond bigint, a NUL reaching PostgreSQL, a snooze
    time that overflows in UTC) or a text/plain answer (unknown route, wrong method); now a
    documented 4xx in the API's error shape."""
    running: Running = alerts_api.value
    token = alerts_api.run(running.token("acme", "edges"))
    auth = {"Authorization": f"Bearer {token}"}
    rows = alerts_api.run(running.fetch("SELECT id FROM alerts WHERE tenant = 'acme'"))
    alert = {"alert_id": str(rows[0]["id"])}
    listing = alerts_schema["/api/alerts"]["GET"]
    one = alerts_schema["/api/alerts/{alert_id}"]["GET"]
    snooze = alerts_schema["/api/alerts/{alert_id}/snooze"]["POST"]
    assign = alerts_schema["/api/alerts/{alert_id}/assign"]["POST"]
    json = "application/json"
    refused = [
        listing.Case(query={"offset": 2**63}),
        listing.Case(query={"offset": 10**20}),
        listing.Case(query={"learner": "\x00"}),
        listing.Case(query={"kind": "a\x00"}),
        listing.Case(query={"status": "\x00,open"}),
        one.Case(path_parameters={"alert_id": "a/b"}),
        snooze.Case(
            path_parameters=alert, body={"until": "9999-12-31T23:59:59-14:00"}, media_type=json
        ),
        snooze.Case(
            path_parameters=alert,
            body={"until": "2030-01-01T00:00:00Z", "note": "\x00"},
            media_type=json,
        ),
        assign.Case(path_parameters=alert, body={"assignee": "\x00"}, media_type=json),
    ]
    for case in refused:
        response = case.call_and_validate(headers=auth, checks=CHECKS)
        assert response.status_code in {400, 404}, (case.query, case.body)
    # outside the document: still the API's JSON error shape, not aiohttp's text/plain
    for method, path, status in [
        ("DELETE", f"/api/alerts/{alert['alert_id']}", 405),
        ("GET", "/api/nope", 404),
    ]:
        r = requests.request(method, running.base + path, headers=auth, timeout=10)
        assert r.status_code == status
        assert r.headers["Content-Type"].startswith("application/json")
        assert set(r.json()) == {"error", "reason"}
