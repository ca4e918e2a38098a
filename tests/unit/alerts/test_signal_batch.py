"""A batch of signals decided in memory: each one sees what the ones before it left (an alert
opened, updated, resolved; the cooldown of a resolution made in the batch), and each change
keeps the alert as it was right after it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from services.alerts.signal_batch import SignalBatch, as_stored, key_of, utc
from services.alerts.state import Signal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = ("acme", "0" * 32, "failure_streak", "py.basics")


def raise_(minutes: float, severity: str = "medium", **evidence: Any) -> Signal:
    return Signal.model_validate(
        {
            "kind": "failure_streak",
            "action": "raise",
            "competency": "py.basics",
            "severity": severity,
            "at": T0 + timedelta(minutes=minutes),
            "cooldown_hours": 12,
            "evidence": evidence,
        }
    )


def clear(minutes: float) -> Signal:
    return Signal(
        kind="failure_streak",
        action="clear",
        competency="py.basics",
        at=T0 + timedelta(minutes=minutes),
        evidence={"correct": True},
    )


def test_open_update_resolve_then_cooldown_then_open_again_in_one_batch() -> None:
    batch = SignalBatch({}, {})
    assert key_of("acme", "0" * 32, raise_(0)) == KEY
    cause = uuid.uuid4()
    assert batch.decide(KEY, raise_(0)) == "open"
    opened = batch.open(KEY, raise_(0, wrong=4), "coaching", cause)
    assert batch.decide(KEY, raise_(1)) == "update"
    updated = batch.update(KEY, raise_(1, "high", wrong=5), None)
    assert batch.decide(KEY, clear(2)) == "resolve"
    resolved = batch.resolve(KEY, clear(2), None)
    assert batch.decide(KEY, clear(3)) == "ignore"
    assert batch.decide(KEY, raise_(60 * 12 + 1)) == "suppress"  # 12 h after the resolution
    assert batch.decide(KEY, raise_(60 * 12 + 2)) == "open"
    again = batch.open(KEY, raise_(60 * 12 + 2), None, None)

    first = opened.alert["id"]
    assert (opened.action, opened.from_status, opened.cause) == ("opened", None, cause)
    assert (opened.alert["status"], opened.alert["signals"], opened.alert["version"]) == (
        "open", 1, 1,
    )  # fmt: skip
    assert opened.alert["evidence"] == {"wrong": 4}  # a copy: not what the update made of it
    assert (updated.action, updated.from_status) == ("updated", "open")
    assert updated.alert["id"] == first
    assert (updated.alert["signals"], updated.alert["version"]) == (2, 2)
    assert updated.alert["severity"] == "high"
    assert updated.alert["last_seen_at"] == T0 + timedelta(minutes=1)
    assert (resolved.action, resolved.from_status) == ("resolved", "open")
    assert resolved.details == {"reason": "condition cleared", "correct": True}
    assert resolved.alert["resolved_at"] == T0 + timedelta(minutes=2)
    assert (resolved.alert["resolution"], resolved.alert["version"]) == ("auto", 3)
    assert again.alert["id"] != first
    # written once each, as they are after the batch
    [row] = batch.inserted()[:1]
    assert row["id"] == first
    assert (row["status"], row["version"]) == ("resolved", 3)
    assert [r["id"] for r in batch.inserted()] == [first, again.alert["id"]]
    assert batch.updated() == []


def test_an_alert_loaded_before_the_batch_is_updated_in_place() -> None:
    active = {
        "id": uuid.uuid4(),
        "status": "snoozed",
        "severity": "high",
        "signals": 7,
        "version": 9,
        "last_seen_at": T0 + timedelta(hours=1),  # later than the signal (a replay)
        "evidence": {},
    }
    batch = SignalBatch({KEY: active}, {KEY: T0 - timedelta(days=1)})
    assert batch.decide(KEY, raise_(0)) == "update"
    change = batch.update(KEY, raise_(0, "low"), None)
    assert change.from_status == "snoozed"
    assert change.alert["severity"] == "high"  # never lowered
    assert change.alert["last_seen_at"] == T0 + timedelta(hours=1)
    assert (change.alert["signals"], change.alert["version"]) == (8, 10)
    assert batch.inserted() == []
    assert [r["id"] for r in batch.updated()] == [active["id"]]


def test_resolution_before_the_batch_keeps_the_later_of_both() -> None:
    later = T0 + timedelta(days=2)  # a staff resolution at wall time, after the event time
    batch = SignalBatch({}, {KEY: later})
    assert batch.decide(KEY, raise_(0)) == "suppress"
    batch.open(KEY, raise_(60 * 24 * 3), None, None)
    batch.resolve(KEY, clear(1), None)  # event time before the stored resolution
    assert batch.decide(KEY, raise_(60 * 24 * 2 + 60)) == "suppress"


def test_values_as_postgresql_gives_them_back() -> None:
    stored = as_stored({"zz": 1, "b": [{"yy": 1.0, "x": "a"}], "aa": T0})
    assert list(stored) == ["b", "aa", "zz"]  # shorter keys first, then byte order
    assert list(stored["b"][0]) == ["x", "yy"]
    assert stored["aa"] == "2026-03-02T09:00:00+00:00"
    plus_two = datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus_two) == T0
    assert utc(plus_two).tzinfo is UTC
    assert utc(datetime(2026, 3, 2, 9, 0)) == T0  # noqa: DTZ001 - naive is taken as UTC
