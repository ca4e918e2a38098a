"""Webhook receivers that time out or fail, with the whole alerts service running (Faust stream on
Kafka, outbox relay, delivery worker) on the shared servers.

``tests/integration/alerts/test_webhooks.py`` covers one 503 then success, and a receiver that
always times out until the delivery is dead, with the worker driven by hand. Here the worker runs
on its own and:

* a receiver that first times out, then answers 500 twice, then 200 gets the event on the fourth
  attempt: every attempt is recorded with its outcome, the pauses between attempts follow the
  doubling back-off (each at least the configured delay, each longer than the one before), every
  attempt carries the same body and event id, and the final one a valid signature;
* while one tenant's receiver keeps timing out and failing, the stream goes on: other learners'
  progress updates are applied and their alerts raised, and another tenant's webhook gets its
  deliveries; once the receiver recovers, each of its events is delivered once and none is dead.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.alerts import staff_repository as staff_repo
from services.alerts.app import Alerts, open_alerts
from services.alerts.config import AlertsSettings
from services.alerts.delivery import backoff_seconds
from services.alerts.signing import HEADER, verify
from shared.envelope import ALERT_EVENT_V1, Envelope
from shared.kafka import kafka_producer
from tests.integration.alerts.conftest import T0, learner, progress

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 0.5  # webhook request timeout, s
BACKOFF = 0.4  # first retry delay, s (doubles)
EVENT_ID = "X-Skillstream-Event-Id"
ATTEMPT = "X-Skillstream-Delivery-Attempt"


@pytest.fixture
def alerts_settings(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> AlertsSettings:
    return AlertsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        partitions=2,
        http_port=0,
        stream_enabled=True,
        relay_poll_seconds=0.1,
        retry_max_seconds=1.0,
        scan_seconds=3600,
        inactivity_clock="event",
        settings_cache_seconds=0,
        webhook_timeout_seconds=TIMEOUT,
        webhook_backoff_seconds=BACKOFF,
        webhook_max_attempts=6,
    )


@pytest.fixture
async def service(
    alerts_settings: AlertsSettings, kafka_cleanup: None
) -> AsyncIterator[Callable[..., Awaitable[Alerts]]]:
    """``await service(**overrides)``: the alerts service with all its workers, until the test
    ends."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Alerts:
            merged = alerts_settings.model_copy(update=overrides)
            return await stack.enter_async_context(open_alerts(merged, start_workers=True))

        yield start


async def route(alerts: Alerts, tenant: str, url: str, secret: str) -> None:
    """Every alert of ``tenant`` goes to team ``coaching``, whose webhook is ``url``."""
    async with alerts.pool.acquire() as conn:
        await staff_repo.upsert_team(conn, tenant, "coaching", "Coaching")
        await staff_repo.insert_rule(conn, tenant, "coaching", priority=100)
        await staff_repo.insert_webhook(conn, tenant, "coaching", url, secret)


async def wrong_answers(alerts: Alerts, learners: list[tuple[str, int]], count: int = 4) -> int:
    """``count`` wrong answers per ``(tenant, learner number)`` on ``progress.updates`` (four
    in a row raise a failure-streak alert); returns the number of updates sent."""
    async with kafka_producer(alerts.settings.kafka_bootstrap_servers) as producer:
        for tenant, n in learners:
            for i in range(count):
                env = progress(
                    T0 + timedelta(minutes=i), tenant=tenant, who=learner(n), correct=False
                )
                await producer.send(alerts.topics.progress_updates, env.to_bytes(), key=env.key)
        await producer.flush()
    return len(learners) * count


async def rows(alerts: Alerts, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with alerts.pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch(sql, *args)]


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.05)


async def test_timeout_then_errors_are_retried_with_growing_backoff_until_delivered(
    service: Callable[..., Awaitable[Alerts]],
) -> None:
    calls: list[tuple[str, str, bytes, str]] = []  # (event id, attempt header, body, signature)

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        calls.append(
            (request.headers[EVENT_ID], request.headers[ATTEMPT], body, request.headers[HEADER])
        )
        n = sum(1 for c in calls if c[0] == request.headers[EVENT_ID])
        if n == 1:
            await asyncio.sleep(TIMEOUT * 3)  # answers after the sender gave up
            return web.Response(status=200)
        return web.Response(status=500 if n <= 3 else 200)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    async with TestServer(receiver, host="127.0.0.1", port=0) as server:
        alerts = await service()
        await route(alerts, "acme", f"http://127.0.0.1:{server.port}/hook", "s3cret")
        await wrong_answers(alerts, [("acme", 1)])

        async def delivered() -> bool:
            found = await rows(alerts, "SELECT status FROM deliveries")
            return [r["status"] for r in found] == ["delivered"]

        await until(delivered, 30, "the delivery succeeded")

    [delivery] = await rows(alerts, "SELECT id, attempts, last_status, last_error FROM deliveries")
    assert (delivery["attempts"], delivery["last_status"], delivery["last_error"]) == (4, 200, None)
    attempts = await rows(
        alerts,
        "SELECT attempt, status_code, error, duration_ms,"
        " extract(epoch FROM at)::float8 AS at FROM delivery_attempts"
        " WHERE delivery_id = $1 ORDER BY attempt",
        delivery["id"],
    )
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [
        (1, None),
        (2, 500),
        (3, 500),
        (4, 200),
    ]
    assert "Timeout" in attempts[0]["error"], attempts[0]["error"]
    assert attempts[0]["duration_ms"] >= TIMEOUT * 1000 * 0.9
    assert [a["error"] for a in attempts[1:]] == ["HTTP 500", "HTTP 500", None]

    # pause k: from the end of attempt k to the start of attempt k + 1
    ends = [a["at"] for a in attempts]
    starts = [a["at"] - a["duration_ms"] / 1000 for a in attempts]
    pauses = [starts[k + 1] - ends[k] for k in range(3)]
    for k, pause in enumerate(pauses, start=1):
        assert pause >= backoff_seconds(k, BACKOFF, 600) - 0.05, pauses
    assert pauses[0] < pauses[1] < pauses[2], pauses

    # the receiver saw four attempts of one event, numbered, with the same body each time
    assert len(calls) == 4
    assert {c[0] for c in calls} == {c[0] for c in calls[:1]}
    assert [c[1] for c in calls] == ["1", "2", "3", "4"]
    assert len({c[2] for c in calls}) == 1
    _, _, body, signature = calls[-1]
    assert verify("s3cret", signature, body)
    assert not verify("other", signature, body)
    event = Envelope.parse(body, {ALERT_EVENT_V1})
    assert str(event.event_id) == calls[-1][0]
    assert (event.payload["action"], event.payload["kind"]) == ("opened", "failure_streak")


async def test_a_failing_receiver_does_not_hold_up_the_stream_or_other_webhooks(
    service: Callable[..., Awaitable[Alerts]],
) -> None:
    release = asyncio.Event()
    stuck: list[tuple[str, int]] = []  # (event id, status answered; 0: too late)
    signed: list[bool] = []  # the signatures of the requests answered 200
    ok: list[tuple[str, bytes, str]] = []

    async def failing(request: web.Request) -> web.Response:
        event_id = request.headers[EVENT_ID]
        body, signature = await request.read(), request.headers[HEADER]
        if release.is_set():
            signed.append(verify("acme-secret", signature, body))
            stuck.append((event_id, 200))
            return web.Response(status=200)
        if len(stuck) % 2 == 0:
            stuck.append((event_id, 0))
            await asyncio.sleep(TIMEOUT * 3)
            return web.Response(status=200)
        stuck.append((event_id, 500))
        return web.Response(status=500)

    async def healthy(request: web.Request) -> web.Response:
        ok.append((request.headers[EVENT_ID], await request.read(), request.headers[HEADER]))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/failing", failing)
    receiver.router.add_post("/healthy", healthy)
    async with TestServer(receiver, host="127.0.0.1", port=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        # retries often (backoff capped at 0.5 s) and for long: the receiver stays broken
        alerts = await service(webhook_backoff_seconds=0.2, webhook_backoff_max_seconds=0.5,
                               webhook_max_attempts=1000)  # fmt: skip
        await route(alerts, "acme", f"{base}/failing", "acme-secret")
        await route(alerts, "globex", f"{base}/healthy", "globex-secret")
        sent = await wrong_answers(alerts, [("acme", 1)])

        async def failing_twice() -> bool:
            return {status for _, status in stuck} >= {0, 500}

        await until(failing_twice, 20, "the acme receiver timed out and failed")

        # meanwhile: more learners of both tenants, through Kafka and the Faust agent
        others = [("acme", 2), ("acme", 3), ("globex", 4), ("globex", 5), ("globex", 6)]
        sent += await wrong_answers(alerts, others)

        async def stream_went_on() -> bool:
            applied = await rows(alerts, "SELECT count(*) AS n FROM inbox")
            opened = await rows(alerts, "SELECT tenant, learner_key FROM alerts")
            return applied[0]["n"] == sent and len(opened) == 6 and len(ok) == 3

        await until(stream_went_on, 30, "updates applied, alerts raised, globex delivered")
        assert not release.is_set()
        pending = await rows(
            alerts,
            "SELECT d.status, d.attempts FROM deliveries d WHERE d.tenant = 'acme' ORDER BY d.id",
        )
        assert {d["status"] for d in pending} == {"pending"}
        assert pending[0]["attempts"] >= 2
        assert all(status != 200 for _, status in stuck)

        release.set()

        async def all_delivered() -> bool:
            found = await rows(alerts, "SELECT status FROM deliveries")
            return len(found) == 6 and {r["status"] for r in found} == {"delivered"}

        await until(all_delivered, 30, "every delivery made once the receiver recovered")

    opened = await rows(alerts, "SELECT tenant, learner_key, kind, status FROM alerts")
    assert sorted((r["tenant"], r["learner_key"]) for r in opened) == sorted(
        (t, learner(n)) for t, n in [("acme", 1), *others]
    )
    assert {(r["kind"], r["status"]) for r in opened} == {("failure_streak", "open")}
    history = await rows(alerts, "SELECT event_id FROM alert_history WHERE action = 'opened'")
    acme = {
        str(r["event_id"])
        for r in await rows(
            alerts,
            "SELECT h.event_id FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
            " WHERE a.tenant = 'acme'",
        )
    }
    assert len(history) == 6
    # the recovered receiver got each acme event exactly once with a 200
    assert collections.Counter(e for e, status in stuck if status == 200) == dict.fromkeys(acme, 1)
    assert signed == [True] * len(acme)
    # the healthy one got each globex event once, signed with its own secret
    assert len({e for e, _, _ in ok}) == 3
    for _, body, signature in ok:
        assert verify("globex-secret", signature, body)
        assert Envelope.parse(body, {ALERT_EVENT_V1}).tenant == "globex"
    attempts = await rows(
        alerts,
        "SELECT a.status_code, a.error FROM delivery_attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant = 'acme'",
    )
    assert {a["status_code"] for a in attempts} == {None, 500, 200}
    assert any("Timeout" in (a["error"] or "") for a in attempts)
