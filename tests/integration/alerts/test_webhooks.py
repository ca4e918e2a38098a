"""Signed webhooks: a receiver that fails first then succeeds gets the event on the retry; one
that times out is retried then dead-lettered; every attempt is recorded. The change is also
published on alerts.events by the outbox relay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.alerts import staff_repository as staff_repo
from services.alerts.signing import HEADER, verify
from shared.envelope import ALERT_EVENT_V1, Envelope
from tests.integration.alerts.conftest import T0, StartAlerts, progress
from tests.integration.waiting import consume, eventually

pytestmark = pytest.mark.timeout(60)


async def test_signed_deliveries_retry_and_dead_letter(
    start_alerts: StartAlerts, kafka_bootstrap: str
) -> None:
    received: list[tuple[bytes, str, str]] = []
    calls = {"flaky": 0, "slow": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            return web.Response(status=503)
        received.append(
            (
                await request.read(),
                request.headers[HEADER],
                request.headers["X-Skillstream-Delivery-Attempt"],
            )
        )
        return web.Response(status=204)

    async def slow(_: web.Request) -> web.Response:
        calls["slow"] += 1
        await asyncio.sleep(2)
        return web.Response(status=200)

    receiver = web.Application()
    receiver.router.add_post("/flaky", flaky)
    receiver.router.add_post("/slow", slow)
    async with TestServer(receiver, host="127.0.0.1", port=0) as server:
        running = await start_alerts()
        base = f"http://127.0.0.1:{server.port}"
        async with running.alerts.pool.acquire() as conn:
            await staff_repo.upsert_team(conn, "acme", "coaching", "Coaching")
            await staff_repo.upsert_team(conn, "acme", "other", "Other")
            await staff_repo.insert_rule(conn, "acme", "other", priority=50, kind="gaming")
            await staff_repo.insert_rule(conn, "acme", "coaching", priority=100)
            await staff_repo.insert_webhook(conn, "acme", "coaching", f"{base}/flaky", "s3cret")
            await staff_repo.insert_webhook(conn, "acme", "coaching", f"{base}/slow", "other")
        table: dict[bytes, bytes] = {}
        for i in range(4):
            env = progress(T0 + timedelta(minutes=i), correct=False)
            assert await running.apply(env, table) == "applied"
        [alert] = await running.fetch("SELECT team, status FROM alerts")
        assert alert == {"team": "coaching", "status": "open"}
        worker = running.alerts.webhooks

        async def settled() -> bool:
            await worker.run_once()
            rows = await running.fetch("SELECT status FROM deliveries")
            return all(r["status"] != "pending" for r in rows)

        await eventually(settled, within=15, what="deliveries settled")

    rows = await running.fetch(
        "SELECT w.url, d.status, d.attempts, d.last_status FROM deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id ORDER BY w.id"
    )
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 2), ("dead", 3)]
    assert rows[0]["last_status"] == 204
    attempts = await running.fetch(
        "SELECT attempt, status_code, error FROM delivery_attempts ORDER BY id"
    )
    assert len(attempts) == 5
    assert {a["status_code"] for a in attempts} == {503, 204, None}
    assert calls == {"flaky": 2, "slow": 3}

    [(body, signature, attempt)] = received
    assert attempt == "2"
    assert verify("s3cret", signature, body)
    assert not verify("other", signature, body)
    event = Envelope.parse(body, {ALERT_EVENT_V1})
    assert event.payload["action"] == "opened"
    assert event.payload["kind"] == "failure_streak"

    async with running.alerts.pool.acquire() as conn:
        assert await running.alerts.relay.publish_once(conn) == 1
    [record] = await consume(kafka_bootstrap, running.alerts.topics.alerts_events, 1)
    assert record.value == body
    metrics = running.alerts.metrics.render().decode()
    assert 'skillstream_alerts_webhook_deliveries_total{outcome="dead"} 1.0' in metrics
    assert (
        'skillstream_alerts_alerts_raised_total{kind="failure_streak",severity="medium"} 1.0'
        in (metrics)
    )


async def test_a_round_settled_claims_the_next(start_alerts: StartAlerts) -> None:
    """One request per round: settling the first round claims (leases) the second delivery,
    which the next round sends without claiming; the delivery just settled for a retry is not
    claimed again by the statement that settled it."""
    paths: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.Response(status=500 if request.path == "/fail" else 200)

    receiver = web.Application()
    receiver.router.add_post("/{name}", hook)
    async with TestServer(receiver, host="127.0.0.1", port=0) as server:
        running = await start_alerts(webhook_concurrency=1, webhook_backoff_seconds=0.001)
        base = f"http://127.0.0.1:{server.port}"
        async with running.alerts.pool.acquire() as conn:
            await staff_repo.upsert_team(conn, "acme", "coaching", "Coaching")
            await staff_repo.insert_rule(conn, "acme", "coaching", priority=100)
            await staff_repo.insert_webhook(conn, "acme", "coaching", f"{base}/fail", "a")
            await staff_repo.insert_webhook(conn, "acme", "coaching", f"{base}/ok", "b")
        table: dict[bytes, bytes] = {}
        for i in range(4):
            env = progress(T0 + timedelta(minutes=i), correct=False)
            assert await running.apply(env, table) == "applied"
        deliveries = "SELECT w.url, d.status, d.attempts, d.next_attempt_at > now() AS leased FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id ORDER BY w.id"  # noqa: E501
        worker = running.alerts.webhooks

        assert await worker.run_once() == 1
        assert paths == ["/fail"]
        rows = await running.fetch(deliveries)
        # the first delivery failed (retry due now), the second was claimed with its outcome
        assert [(r["status"], r["attempts"], r["leased"]) for r in rows] == [
            ("pending", 1, False),
            ("pending", 0, True),
        ]
        assert await worker.run_once() == 1
        assert paths == ["/fail", "/ok"]
        rows = await running.fetch(deliveries)
        assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 1), ("delivered", 1)]
        # the retry, claimed with the second round's outcome
        assert rows[0]["leased"]
        assert await worker.run_once() == 1
        assert paths == ["/fail", "/ok", "/fail"]


async def test_a_webhook_gets_only_the_actions_it_subscribed_to(
    start_alerts: StartAlerts,
) -> None:
    """One endpoint takes every action, one only ``opened`` and ``resolved``: the evidence
    updates in between go to the first only; a list with an unknown action is refused."""
    running = await start_alerts()
    async with running.alerts.pool.acquire() as conn:
        await staff_repo.upsert_team(conn, "acme", "coaching", "Coaching")
        await staff_repo.insert_rule(conn, "acme", "coaching", priority=100)
        every = await staff_repo.insert_webhook(conn, "acme", "coaching", "http://a.invalid", "a")
        some = await staff_repo.insert_webhook(
            conn, "acme", "coaching", "http://b.invalid", "b", actions=["opened", "resolved"]
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await staff_repo.insert_webhook(
                conn,
                "acme",
                "coaching",
                "http://c.invalid",
                "c",
                actions=["bogus"],  # type: ignore[list-item]
            )
    table: dict[bytes, bytes] = {}
    wheel_off = {"wheel_spinning": {"enabled": False}}
    async with running.alerts.pool.acquire() as conn:
        await staff_repo.set_detector_settings(conn, "acme", "", wheel_off)
    for i, correct in enumerate([False] * 5 + [True]):  # opened at 4, updated at 5, resolved
        env = progress(T0 + timedelta(minutes=i), correct=correct)
        assert await running.apply(env, table) == "applied"
    rows = await running.fetch("SELECT webhook_id, body FROM deliveries ORDER BY id")
    sent: dict[int, list[str]] = {every: [], some: []}
    for row in rows:
        event = Envelope.parse(row["body"], {ALERT_EVENT_V1})
        assert event.payload["kind"] == "failure_streak"
        sent[row["webhook_id"]].append(event.payload["action"])
    assert sent == {every: ["opened", "updated", "resolved"], some: ["opened", "resolved"]}
