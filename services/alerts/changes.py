"""Every change to an alert goes through here, inside the caller's transaction:

1. the alert row is inserted or updated;
2. a history entry records who did what (``system`` or ``staff:<token name>``) and the status
   before and after;
3. the change's envelope (``skillstream.alert_event.v1``) goes to the outbox (published to
   ``alerts.events`` by :class:`~services.alerts.outbox.OutboxRelay`) and, when the alert has a
   team, one delivery row per active webhook of the team (sent by the delivery worker);
   2 and 3 (and the NOTIFYs) in one statement, :func:`repository.record_change`.

So a change is committed with its event and its notifications, or not at all, and neither
Kafka nor a slow webhook can block the caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.alerts import repository as repo
from services.alerts.errors import BadRequestError
from services.alerts.lifecycle import (
    Current,
    Decision,
    StaffAction,
    check_snooze,
    decide,
    max_severity,
    staff_transition,
)
from services.alerts.routing import route
from services.alerts.state import Signal
from shared.alert_events import AlertEvent
from shared.envelope import ALERT_EVENT_V1, Envelope

SYSTEM = "system"


@dataclass
class Outcome:
    """What happened in one transaction, for metrics after it commits."""

    opened: list[tuple[str, str]] = field(default_factory=list)  # (kind, severity)
    decisions: list[tuple[str, Decision]] = field(default_factory=list)
    events: int = 0
    deliveries: int = 0
    notified: set[str] = field(default_factory=set)  # channels notified in this transaction


def _event(
    alert: dict[str, Any], action: str, actor: str, note: str | None, cause: uuid.UUID | None
) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "alert_id": alert["id"],
            "action": action,
            "actor": actor,
            "kind": alert["kind"],
            "competency": alert["competency"] or None,
            "programme": alert["programme"],
            "business_unit": alert["business_unit"],
            "severity": alert["severity"],
            "support": alert["support"],
            "status": alert["status"],
            "team": alert["team"],
            "assignee": alert["assignee"],
            "snoozed_until": alert["snoozed_until"],
            "note": note,
            "first_seen_at": alert["first_seen_at"],
            "last_seen_at": alert["last_seen_at"],
            "evidence": alert["evidence"],
            "cause_statement_id": cause,
        }
    )


class Changes:
    def __init__(self, schema: str) -> None:
        self._outbox_channel = repo.outbox_channel(schema)
        self._deliveries_channel = repo.deliveries_channel(schema)

    async def record(
        self,
        conn: repo.Conn,
        alert: dict[str, Any],
        *,
        action: str,
        actor: str,
        from_status: str | None,
        occurred_at: datetime,
        outcome: Outcome,
        note: str | None = None,
        details: dict[str, Any] | None = None,
        cause: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record one change; ``cause`` is the statement behind a change made by the stream."""
        payload = _event(alert, action, actor, note, cause)
        env = Envelope.new(
            ALERT_EVENT_V1,
            tenant=alert["tenant"],
            learner_key=alert["learner_key"],
            occurred_at=occurred_at,
            payload=payload.model_dump(mode="json"),
        )
        first_in_transaction = self._outbox_channel not in outcome.notified
        queued = await repo.record_change(
            conn,
            repo.Change(
                alert_id=alert["id"],
                event_id=env.event_id,
                action=action,
                actor=actor,
                from_status=from_status,
                to_status=alert["status"],
                details={**(details or {}), **({"note": note} if note else {})},
                tenant=env.tenant,
                key=env.key,
                envelope=env.to_bytes(),
                team=alert["team"],
            ),
            outbox_channel=self._outbox_channel if first_in_transaction else None,
            deliveries_channel=(
                None if self._deliveries_channel in outcome.notified else self._deliveries_channel
            ),
        )
        outcome.notified.add(self._outbox_channel)
        if queued:
            outcome.notified.add(self._deliveries_channel)
        outcome.events += 1
        outcome.deliveries += queued
        return env.event_id

    # --- detector signals ------------------------------------------------------------------

    async def apply_signal(
        self,
        conn: repo.Conn,
        tenant: str,
        learner_key: str,
        signal: Signal,
        outcome: Outcome,
        *,
        cause: uuid.UUID | None = None,
    ) -> Decision:
        """Apply one detector signal; ``cause`` is the statement whose update produced it."""
        competency = signal.competency or ""
        active = await repo.active_alert(conn, tenant, learner_key, signal.kind, competency)
        resolved_at = None
        if active is None and signal.action == "raise":
            resolved_at = await repo.last_resolved_at(
                conn, tenant, learner_key, signal.kind, competency
            )
        decision = decide(signal, Current(active["status"] if active else None, resolved_at))
        outcome.decisions.append((signal.kind, decision))
        if decision == "open":
            rules = await repo.routing_rules(conn, tenant)
            team = route(
                rules,
                business_unit=signal.business_unit,
                programme=signal.programme,
                kind=signal.kind,
                severity=signal.severity,
            )
            alert = await repo.insert_alert(
                conn,
                {
                    "id": uuid.uuid4(),
                    "tenant": tenant,
                    "learner_key": learner_key,
                    "kind": signal.kind,
                    "competency": competency,
                    "programme": signal.programme,
                    "business_unit": signal.business_unit,
                    "severity": signal.severity,
                    "support": signal.support,
                    "status": "open",
                    "team": team,
                    "evidence": signal.evidence,
                    "first_seen_at": signal.at,
                    "last_seen_at": signal.at,
                },
            )
            outcome.opened.append((signal.kind, signal.severity))
            await self.record(
                conn, alert, action="opened", actor=SYSTEM, from_status=None,
                occurred_at=signal.at, outcome=outcome, cause=cause,
            )  # fmt: skip
        elif decision == "update" and active is not None:
            alert = await repo.update_alert(
                conn,
                active["id"],
                {
                    "evidence": signal.evidence,
                    "severity": max_severity(active["severity"], signal.severity),
                    "support": signal.support,
                    "last_seen_at": max(active["last_seen_at"], signal.at),
                    "signals": active["signals"] + 1,
                },
            )
            await self.record(
                conn, alert, action="updated", actor=SYSTEM, from_status=active["status"],
                occurred_at=signal.at, outcome=outcome, cause=cause,
            )  # fmt: skip
        elif decision == "resolve" and active is not None:
            alert = await repo.update_alert(
                conn,
                active["id"],
                {"status": "resolved", "resolved_at": signal.at, "resolution": "auto"},
            )
            await self.record(
                conn, alert, action="resolved", actor=SYSTEM, from_status=active["status"],
                occurred_at=signal.at, outcome=outcome, cause=cause,
                details={"reason": "condition cleared", **signal.evidence},
            )  # fmt: skip
        return decision

    # --- staff and timers ------------------------------------------------------------------

    async def staff_action(
        self,
        conn: repo.Conn,
        alert: dict[str, Any],
        action: StaffAction,
        actor: str,
        *,
        note: str | None = None,
        assignee: str | None = None,
        until: datetime | None = None,
        outcome: Outcome,
    ) -> dict[str, Any]:
        """Apply a staff action to ``alert`` (locked by the caller); ConflictError when the
        status does not allow it."""
        now = datetime.now(UTC)
        status, past = staff_transition(alert["status"], action)
        values: dict[str, Any] = {"status": status}
        if action == "assign":
            values["assignee"] = assignee
        elif action == "snooze":
            if until is None:
                raise BadRequestError("snooze needs 'until'")
            check_snooze(until, now)
            values["snoozed_until"] = until
        elif action == "resolve":
            values.update(resolved_at=now, resolution="staff", note=note, snoozed_until=None)
        elif action == "acknowledge":
            values["snoozed_until"] = None
        updated = await repo.update_alert(conn, alert["id"], values)
        details: dict[str, Any] = {}
        if assignee is not None:
            details["assignee"] = assignee
        if until is not None:
            details["until"] = until.isoformat()
        await self.record(
            conn, updated, action=past, actor=actor, from_status=alert["status"],
            occurred_at=now, outcome=outcome, note=note, details=details,
        )  # fmt: skip
        return updated

    async def unsnooze(
        self, conn: repo.Conn, alert_id: uuid.UUID, now: datetime, outcome: Outcome
    ) -> bool:
        alert = await repo.lock_alert(conn, alert_id)
        if alert is None or alert["status"] != "snoozed":
            return False
        updated = await repo.update_alert(conn, alert_id, {"status": "open", "snoozed_until": None})
        await self.record(
            conn, updated, action="unsnoozed", actor=SYSTEM, from_status="snoozed",
            occurred_at=now, outcome=outcome,
        )  # fmt: skip
        return True
