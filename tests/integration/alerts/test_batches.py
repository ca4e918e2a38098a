"""A batch's signals are applied in a few statements (:meth:`Changes.apply_signals`): what it
leaves -- alerts, history, outbox events, deliveries -- is what the same updates leave applied
one at a time, including several changes of one alert in a batch, an open then an update, a
resolution then a raise inside the cooldown or after it, and a batch that falls back to one
update per transaction."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.alerts import staff_repository as staff_repo
from shared.envelope import Envelope
from tests.integration.alerts.conftest import T0, Running, StartAlerts, learner, progress

pytestmark = pytest.mark.timeout(60)

X, Y = learner(1), learner(2)
SNOOZED_UNTIL = datetime(2031, 1, 1, tzinfo=UTC)


async def _route(running: Running, tenant: str) -> None:
    async with running.alerts.pool.acquire() as conn:
        await staff_repo.upsert_team(conn, tenant, "coaching", "Coaching")
        await staff_repo.insert_rule(conn, tenant, "coaching", priority=100)
        for name in ("a", "b"):
            url = f"http://127.0.0.1:9/{name}"  # never called: no delivery worker here
            await staff_repo.insert_webhook(conn, tenant, "coaching", url, "s3cret")


def _updates(tenant: str) -> tuple[list[Envelope], list[Envelope]]:
    """(before the batch, the batch) for ``tenant``."""

    made = itertools.count(1)

    def answer(at: datetime, who: str, competency: str, *, correct: bool) -> Envelope:
        statement = str(uuid.UUID(int=next(made)))  # the same for both tenants
        return progress(
            at, tenant=tenant, who=who, correct=correct, competency=competency,
            statement_id=statement,
        )  # fmt: skip

    def wrong(at: datetime, who: str = X, competency: str = "py.basics") -> Envelope:
        return answer(at, who, competency, correct=False)

    def right(at: datetime, who: str = X, competency: str = "py.basics") -> Envelope:
        return answer(at, who, competency, correct=True)

    minute = timedelta(minutes=1)
    before = [wrong(T0 + i * minute, Y, "py.loops") for i in range(4)]  # Y's alert opened
    batch = [wrong(T0 + (10 + i) * minute) for i in range(4)]  # X: opened by the 4th
    batch.append(wrong(T0 + 20 * minute, Y, "py.loops"))  # Y's (snoozed) alert updated
    batch.append(wrong(T0 + 21 * minute))  # X: updated, same batch as its opening
    batch.append(right(T0 + 22 * minute))  # X: resolved
    batch.append(right(T0 + 23 * minute, Y, "py.loops"))  # Y: resolved (was snoozed)
    batch += [wrong(T0 + (30 + i) * minute) for i in range(4)]  # X: inside the cooldown
    later = T0 + timedelta(hours=13)
    batch += [wrong(later + i * minute) for i in range(5)]  # X: opened again, then updated x4
    # Y: opened again; the alert it replaces was open before the batch
    batch += [wrong(later + (10 + i) * minute, Y, "py.loops") for i in range(4)]
    return before, batch


async def _effects(running: Running, tenant: str) -> dict[str, Any]:
    """What the updates of ``tenant`` left, without ids and database times."""
    alerts = await running.fetch(
        "SELECT learner_key, kind, competency, programme, business_unit, severity, support,"
        " status, team, assignee, snoozed_until, evidence::text, signals, first_seen_at,"
        " last_seen_at, resolved_at, resolution, note, version FROM alerts WHERE tenant = $1"
        " ORDER BY learner_key, kind, competency, first_seen_at",
        tenant,
    )
    history = await running.fetch(
        "SELECT a.learner_key, a.kind, a.first_seen_at, h.action, h.actor, h.from_status,"
        " h.to_status, h.details::text FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
        " WHERE a.tenant = $1 ORDER BY h.id",
        tenant,
    )
    outbox = await running.fetch(
        "SELECT event_id, msg_key, envelope FROM outbox WHERE tenant = $1 ORDER BY id", tenant
    )
    events = []
    for row in outbox:
        env = Envelope.parse(row["envelope"], {"skillstream.alert_event.v1"})
        assert row["event_id"] == env.event_id
        assert row["msg_key"] == env.key
        payload = dict(env.payload)
        del payload["alert_id"]
        # bytes, not dicts: the evidence keys come in the order JSONB gives them back
        events.append((env.learner_key, str(env.occurred_at), orjson.dumps(payload)))
    deliveries = await running.fetch(
        "SELECT w.url, d.event_id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.tenant = $1 ORDER BY d.id",
        tenant,
    )
    event_index = {row["event_id"]: n for n, row in enumerate(outbox)}
    return {
        "alerts": alerts,
        "history": history,
        "events": events,
        # (webhook, which event), in the order they were queued
        "deliveries": [
            (r["url"].rsplit("/", 1)[1], event_index[r["event_id"]]) for r in deliveries
        ],
    }


async def test_a_batch_leaves_what_its_updates_leave_one_at_a_time(
    start_alerts: StartAlerts,
) -> None:
    running = await start_alerts()
    processor = running.alerts.processor
    tables: dict[str, dict[bytes, bytes]] = {"batch": {}, "single": {}}
    batches: dict[str, list[Envelope]] = {}
    for tenant, table in tables.items():
        await _route(running, tenant)
        before, batches[tenant] = _updates(tenant)
        for env in before:
            assert await running.apply(env, table) == "applied"
    await running.fetch(
        "UPDATE alerts SET status = 'snoozed', snoozed_until = $1", SNOOZED_UNTIL
    )  # both tenants' alerts of Y

    records = [(env.key, env.to_bytes()) for env in batches["batch"]]
    offsets = list(range(100, 100 + len(records)))
    outcomes = await processor.process_batch(
        records, tables["batch"], partitions=[1] * len(records), offsets=offsets, topic="updates"
    )
    assert outcomes == ["applied"] * len(records)
    # moved in the batch's transaction
    marks = await running.fetch('SELECT topic, partition, "offset" FROM watermarks')
    assert marks == [{"topic": "updates", "partition": 1, "offset": offsets[-1]}]
    for env in batches["single"]:
        assert await running.apply(env, tables["single"]) == "applied"

    batched, single = await _effects(running, "batch"), await _effects(running, "single")
    assert batched == single
    # the batch did what it was meant to: two alerts of X (the cooldown suppressed a third)
    kinds = [(a["learner_key"], a["kind"], a["status"]) for a in batched["alerts"]]
    assert kinds.count((X, "failure_streak", "resolved")) == 1
    assert kinds.count((X, "failure_streak", "open")) == 1
    assert (Y, "failure_streak", "resolved") in kinds
    assert (Y, "failure_streak", "open") in kinds
    streaks = [
        (h["learner_key"], h["action"], h["from_status"])
        for h in batched["history"]
        if h["kind"] == "failure_streak"
    ]
    assert streaks == [
        (Y, "opened", None),  # before the batch
        (X, "opened", None),
        (Y, "updated", "snoozed"),
        (X, "updated", "open"),
        (X, "resolved", "open"),
        (Y, "resolved", "snoozed"),
        # not the 4th wrong answer in a row after the resolution (cooldown: 12 h) but the
        # 5th, 13 hours later, and the 4 after it
        (X, "opened", None),
        *[(X, "updated", "open")] * 4,
        (Y, "opened", None),
    ]
    [y_alert] = [a for a in batched["alerts"] if (a["learner_key"], a["status"]) == (Y, "resolved")]
    assert y_alert["snoozed_until"] == SNOOZED_UNTIL  # an auto-resolution leaves it
    assert (y_alert["version"], y_alert["signals"]) == (3, 2)
    assert batched["deliveries"] == [(w, n) for n in range(len(batched["events"])) for w in "ab"]


async def test_a_batch_that_fails_is_applied_one_update_at_a_time(
    start_alerts: StartAlerts,
) -> None:
    running = await start_alerts()
    table: dict[bytes, bytes] = {}
    minute = timedelta(minutes=1)
    wrongs = [progress(T0 + i * minute, correct=False) for i in range(5)]
    # a NUL in a text column: PostgreSQL refuses it, so the batch's transaction fails for good
    poison = progress(T0, who=Y, business_unit="retail\x00")
    envs = [*wrongs[:3], poison, *wrongs[3:]]
    outcomes = await running.alerts.processor.process_batch(
        [(env.key, env.to_bytes()) for env in envs],
        table,
        partitions=[0, 0, 0, 1, 0, 0],
        offsets=[10, 11, 12, 7, 13, 14],
        topic="updates",
    )
    assert outcomes == ["applied"] * 3 + ["deadletter"] + ["applied"] * 2
    marks = await running.fetch('SELECT partition, "offset" FROM watermarks ORDER BY partition')
    assert marks == [{"partition": 0, "offset": 14}, {"partition": 1, "offset": 7}]
    [alert] = await running.fetch("SELECT learner_key, signals, version, status FROM alerts")
    assert alert == {"learner_key": X, "signals": 2, "version": 2, "status": "open"}
    history = await running.fetch("SELECT action FROM alert_history ORDER BY id")
    assert [h["action"] for h in history] == ["opened", "updated"]
    assert await running.fetchval("SELECT count(*) FROM outbox") == 2
    assert await running.fetchval("SELECT count(*) FROM inbox") == 5


async def test_a_batch_with_redelivered_updates_records_the_effects_of_the_new_ones_only(
    start_alerts: StartAlerts,
) -> None:
    running = await start_alerts()
    minute = timedelta(minutes=1)
    activity: dict[str, Any] = {"evidence": "activity", "competency": None, "duration_s": None}
    old = progress(T0 + 5 * minute, programme="ds-old", business_unit="retail", **activity)
    new = progress(T0 + 6 * minute, programme="ds-new", business_unit="sales", **activity)
    for env in (old, new):
        assert await running.apply(env) == "applied"
    # ``old`` again (its state not in the table: only the inbox knows it) and a late update
    late = progress(T0 + minute, programme=None, business_unit=None, **activity)
    outcomes = await running.alerts.processor.process_batch(
        [(env.key, env.to_bytes()) for env in (old, late)],
        {},
        partitions=[0, 0],
        offsets=[3, 4],
        topic="updates",
    )
    assert outcomes == ["duplicate", "applied"]
    [row] = await running.fetch(
        "SELECT last_activity, programme, business_unit, programme_since FROM learner_activity"
    )
    # what ``old`` then ``new`` left, plus the late update's (older) event time: nothing
    assert row == {
        "last_activity": T0 + 6 * minute,
        "programme": "ds-new",
        "business_unit": "sales",
        "programme_since": T0 + 6 * minute,
    }
    clocks = await running.fetch("SELECT partition, event_time FROM partition_clock")
    assert clocks == [{"partition": 0, "event_time": T0 + minute}]  # the late update's only
    assert await running.fetchval("SELECT event_time FROM event_clock") == T0 + 6 * minute
    marks = await running.fetch('SELECT partition, "offset" FROM watermarks')
    assert marks == [{"partition": 0, "offset": 4}]
