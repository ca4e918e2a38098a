"""The staff API on the real database: scoping by tenant and team, filters, sorting,
pagination, detail with evidence and history, lifecycle actions, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.alerts import staff_repository as staff_repo
from tests.integration.alerts.conftest import T0, Running, StartAlerts, learner, progress

pytestmark = pytest.mark.timeout(60)


async def _seed(running: Running) -> None:
    """acme: failure streaks for learners 1 (programme a, team coaching) and 2 (programme b,
    no rule -> no team), gaming for learner 1; globex: one failure streak."""
    async with running.alerts.pool.acquire() as conn:
        await staff_repo.upsert_team(conn, "acme", "coaching", "Coaching")
        await staff_repo.insert_rule(conn, "acme", "coaching", programme="prog-a")
    feeds: list[tuple[str, str, str, dict[str, Any]]] = [
        ("acme", learner(1), "prog-a", {"correct": False}),
        ("acme", learner(2), "prog-b", {"correct": False}),
        ("globex", learner(1), "prog-a", {"correct": False}),
        ("acme", learner(1), "prog-a", {"correct": True, "duration_s": 1.0, "competency": "sql"}),
    ]
    for tenant, who, programme, payload in feeds:
        table: dict[bytes, bytes] = {}
        for i in range(5):
            env = progress(
                T0 + timedelta(minutes=i), tenant=tenant, who=who, programme=programme, **payload
            )
            assert await running.apply(env, table) == "applied"


async def test_staff_api(start_alerts: StartAlerts) -> None:
    running = await start_alerts()
    await _seed(running)
    acme = await running.token("acme", "lead")
    coach = await running.token("acme", "coach", team="coaching")
    globex = await running.token("globex", "lead")
    http = running.http

    async def get(path: str, token: str | None, **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.get(running.base + path, headers=headers, params=params) as r:
            return r.status, await r.json()

    async def post(path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(running.base + path, headers=headers, json=body) as r:
            return r.status, await r.json()

    assert (await get("/api/alerts", None))[0] == 401
    assert (await get("/api/alerts", "sst_not-a-token"))[0] == 401

    status, page = await get("/api/alerts", acme)
    assert status == 200
    assert page["total"] == 3
    assert {(a["kind"], a["learner_key"]) for a in page["items"]} == {
        ("failure_streak", learner(1)),
        ("failure_streak", learner(2)),
        ("gaming", learner(1)),
    }
    assert {a["tenant"] for a in page["items"]} == {"acme"}

    _, page = await get("/api/alerts", globex)
    assert page["total"] == 1
    assert page["items"][0]["tenant"] == "globex"
    globex_id = page["items"][0]["id"]
    # another tenant's alert does not exist for this token, whatever the route
    assert (await get(f"/api/alerts/{globex_id}", acme))[0] == 404
    assert (await post(f"/api/alerts/{globex_id}/acknowledge", acme, {}))[0] == 404

    _, page = await get("/api/alerts", coach)
    assert {a["team"] for a in page["items"]} == {"coaching"}
    assert page["total"] == 2  # learner 1's two alerts in prog-a

    _, page = await get("/api/alerts", acme, kind="gaming")
    assert [a["competency"] for a in page["items"]] == ["sql"]
    _, page = await get("/api/alerts", acme, programme="prog-b,prog-x", learner=learner(2))
    assert page["total"] == 1
    _, page = await get("/api/alerts", acme, sort="kind", limit=2)
    assert [a["kind"] for a in page["items"]] == ["failure_streak", "failure_streak"]
    assert page["total"] == 3
    _, page = await get("/api/alerts", acme, sort="-kind", limit=2, offset=2)
    assert [a["kind"] for a in page["items"]] == ["failure_streak"]
    assert (await get("/api/alerts", acme, sort="nope"))[0] == 400
    assert (await get("/api/alerts", acme, colour="red"))[0] == 400

    _, page = await get("/api/alerts", coach, kind="failure_streak")
    alert_id = page["items"][0]["id"]
    status, alert = await get(f"/api/alerts/{alert_id}", coach)
    assert status == 200
    assert alert["evidence"]["wrong_in_a_row"] == 5
    assert len(alert["evidence"]["statement_ids"]) == 5
    assert [h["action"] for h in alert["history"]] == ["opened", "updated"]

    assert (await post(f"/api/alerts/{alert_id}/acknowledge", coach, {}))[1]["status"] == (
        "acknowledged"
    )
    assert (await post(f"/api/alerts/{alert_id}/acknowledge", coach, {}))[0] == 409
    _, body = await post(f"/api/alerts/{alert_id}/assign", coach, {"assignee": "sam"})
    assert body["assignee"] == "sam"
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await post(f"/api/alerts/{alert_id}/snooze", coach, {"until": until}))[1][
        "status"
    ] == "snoozed"
    assert (await post(f"/api/alerts/{alert_id}/snooze", coach, {"until": "tomorrow"}))[0] == 400
    _, body = await post(f"/api/alerts/{alert_id}/resolve", coach, {"note": "talked to them"})
    assert (body["status"], body["resolution"], body["note"]) == (
        "resolved",
        "staff",
        "talked to them",
    )
    assert (await post(f"/api/alerts/{alert_id}/resolve", coach, {}))[0] == 409
    _, alert = await get(f"/api/alerts/{alert_id}", acme)
    assert [(h["action"], h["actor"]) for h in alert["history"]] == [
        ("opened", "system"),
        ("updated", "system"),
        ("acknowledged", "staff:coach"),
        ("assigned", "staff:coach"),
        ("snoozed", "staff:coach"),
        ("resolved", "staff:coach"),
    ]
    assert alert["history"][-1]["details"]["note"] == "talked to them"
    assert (
        await running.fetchval("SELECT count(*) FROM outbox") == 3 * 2 + 1 + 4
    )  # 3 streaks opened+updated, gaming opened, 4 staff changes

    async with http.get(running.base + "/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {"/api/alerts", "/api/alerts/{alert_id}/resolve"}
