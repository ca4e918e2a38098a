"""Inactivity on the event clock (replay mode): the scanner raises it for a learner who went
silent; the learner's next evidence auto-resolves it. Expired snoozes go back to open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.alerts.conftest import T0, StartAlerts, learner, progress

pytestmark = pytest.mark.timeout(60)


async def test_inactivity_raised_by_scanner_and_resolved_by_activity(
    start_alerts: StartAlerts,
) -> None:
    running = await start_alerts()
    silent, busy = learner(1), learner(2)
    tables: dict[str, dict[bytes, bytes]] = {silent: {}, busy: {}}
    await running.apply(progress(T0, who=silent, evidence="activity"), tables[silent])
    await running.apply(progress(T0 + timedelta(days=6), who=busy), tables[busy])
    scanner = running.alerts.scanner
    assert (await scanner.scan_once())["inactivity"] == 0  # event clock at 6 days

    await running.apply(progress(T0 + timedelta(days=10), who=busy), tables[busy])
    assert (await scanner.scan_once())["inactivity"] == 1
    assert (await scanner.scan_once())["inactivity"] == 0  # open already: not raised twice
    [alert] = await running.fetch("SELECT * FROM alerts")
    assert (alert["kind"], alert["learner_key"], alert["status"]) == ("inactivity", silent, "open")
    assert alert["first_seen_at"] == T0 + timedelta(days=7)
    assert alert["support"] == "pastoral"

    back = progress(T0 + timedelta(days=11), who=silent, evidence="activity")
    assert await running.apply(back, tables[silent]) == "applied"
    [alert] = await running.fetch("SELECT * FROM alerts")
    assert alert["status"] == "resolved"
    assert alert["resolved_at"] == back.occurred_at
    assert alert["signals"] == 2  # the stream's raise (same alert) then its clear
    history = await running.fetch("SELECT action FROM alert_history ORDER BY id")
    assert [h["action"] for h in history] == ["opened", "updated", "resolved"]
    gauge = 'skillstream_alerts_open_alerts{kind="inactivity"} 0.0'
    await scanner.scan_once()
    assert gauge in running.alerts.metrics.render().decode()


async def test_expired_snooze_returns_to_open(start_alerts: StartAlerts) -> None:
    running = await start_alerts()
    table: dict[bytes, bytes] = {}
    for i in range(4):
        await running.apply(progress(T0 + timedelta(minutes=i), correct=False), table)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await running.fetch("UPDATE alerts SET status = 'snoozed', snoozed_until = $1", past)
    assert (await running.alerts.scanner.scan_once())["unsnoozed"] == 1
    [alert] = await running.fetch("SELECT status, snoozed_until FROM alerts")
    assert alert == {"status": "open", "snoozed_until": None}
    [last] = await running.fetch("SELECT action, actor FROM alert_history ORDER BY id DESC LIMIT 1")
    assert last == {"action": "unsnoozed", "actor": "system"}
