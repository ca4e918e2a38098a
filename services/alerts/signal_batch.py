"""What a batch of detector signals does to the alerts, in memory (no I/O): the alerts that are
not resolved and the latest resolutions of the batch's keys are loaded once (by
:meth:`services.alerts.changes.Changes.apply_signals`), then each signal is decided, in order,
against what the signals before it left (:func:`services.alerts.lifecycle.decide`), and the
alert as it is after each change is kept for that change's event. The alerts are written once,
as they are after the batch.

Each row is what ``SELECT * FROM alerts`` would return after the same statements one signal at a
time (``updated_at`` and ``created_at`` aside: the transaction's time, set by the database):
the evidence as JSONB stores it (keys reordered, see :func:`as_stored`), timestamps in UTC.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.alerts.lifecycle import Current, Decision, decide, max_severity
from services.alerts.state import Signal

#: (tenant, learner_key, kind, competency)
AlertKey = tuple[str, str, str, str]


def _jsonb_order(value: Any) -> Any:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return {k: _jsonb_order(v) for k, v in items}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def as_stored(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a JSONB column gives it back: JSON types only (the pool's orjson codec),
    object keys shorter first, then in byte order."""
    result: dict[str, Any] = _jsonb_order(orjson.loads(orjson.dumps(value)))
    return result


def utc(at: datetime) -> datetime:
    """``at`` as PostgreSQL gives a ``timestamptz`` back (a naive time is taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def key_of(tenant: str, learner_key: str, signal: Signal) -> AlertKey:
    return tenant, learner_key, signal.kind, signal.competency or ""


@dataclass(frozen=True)
class Pending:
    """One change decided: the alert after it, and how it is recorded."""

    alert: dict[str, Any]  # a copy: later changes of the batch do not alter it
    action: str
    from_status: str | None
    occurred_at: datetime
    cause: uuid.UUID | None
    details: dict[str, Any] | None = None


class SignalBatch:
    def __init__(
        self, active: dict[AlertKey, dict[str, Any]], resolved: dict[AlertKey, datetime]
    ) -> None:
        self._active = active
        self._resolved = resolved
        self._rows: dict[uuid.UUID, dict[str, Any]] = {}  # id -> the alert after the batch
        self._new: set[uuid.UUID] = set()

    def decide(self, key: AlertKey, signal: Signal) -> Decision:
        active = self._active.get(key)
        return decide(
            signal, Current(active["status"] if active else None, self._resolved.get(key))
        )

    def open(
        self, key: AlertKey, signal: Signal, team: str | None, cause: uuid.UUID | None
    ) -> Pending:
        at = utc(signal.at)
        alert: dict[str, Any] = {
            "id": uuid.uuid4(),
            "tenant": key[0],
            "learner_key": key[1],
            "kind": key[2],
            "competency": key[3],
            "programme": signal.programme,
            "business_unit": signal.business_unit,
            "severity": signal.severity,
            "support": signal.support,
            "status": "open",
            "team": team,
            "assignee": None,
            "snoozed_until": None,
            "evidence": as_stored(signal.evidence),
            "signals": 1,
            "first_seen_at": at,
            "last_seen_at": at,
            "resolved_at": None,
            "resolution": None,
            "note": None,
            "version": 1,
        }
        self._active[key] = alert
        self._rows[alert["id"]] = alert
        self._new.add(alert["id"])
        return Pending(dict(alert), "opened", None, signal.at, cause)

    def update(self, key: AlertKey, signal: Signal, cause: uuid.UUID | None) -> Pending:
        """More evidence for the key's alert that is not resolved."""
        alert = self._active[key]
        before = alert["status"]
        alert.update(
            evidence=as_stored(signal.evidence),
            severity=max_severity(alert["severity"], signal.severity),
            support=signal.support,
            last_seen_at=max(alert["last_seen_at"], utc(signal.at)),
            signals=alert["signals"] + 1,
            version=alert["version"] + 1,
        )
        self._rows[alert["id"]] = alert
        return Pending(dict(alert), "updated", before, signal.at, cause)

    def resolve(self, key: AlertKey, signal: Signal, cause: uuid.UUID | None) -> Pending:
        """The condition cleared: the key's alert is resolved (and its cooldown starts)."""
        alert = self._active.pop(key)
        before = alert["status"]
        at = utc(signal.at)
        alert.update(
            status="resolved", resolved_at=at, resolution="auto", version=alert["version"] + 1
        )
        self._rows[alert["id"]] = alert
        last = self._resolved.get(key)
        self._resolved[key] = at if last is None else max(last, at)
        details = {"reason": "condition cleared", **signal.evidence}
        return Pending(dict(alert), "resolved", before, signal.at, cause, details)

    def inserted(self) -> list[dict[str, Any]]:
        """The alerts opened by the batch, as they are after it."""
        return [row for aid, row in self._rows.items() if aid in self._new]

    def updated(self) -> list[dict[str, Any]]:
        """The alerts that existed before the batch and that it changed, as they are after it."""
        return [row for aid, row in self._rows.items() if aid not in self._new]
