"""Every change to an alert goes through here, inside the caller's transaction:

1. the alert row is inserted or updated;
2. a history entry records who did what (``system`` or ``staff:<token name>``) and the status
   before and after;
3. the change's envelope (``skillstream.alert_event.v1``) goes to the outbox (published to
   ``alerts.events`` by :class:`~services.alerts.outbox.OutboxRelay`) and, when the alert has a
   team, one delivery row per active webhook of the team (sent by the delivery worker);
   2 and 3 (and the NOTIFYs) in one statement, :func:`change_repository.record_changes`.

A batch of detector signals (:meth:`Changes.apply_signals`) costs a few statements whatever its
size: its alerts are locked and read at once (with the resolutions and routing rules the
decisions need), decided in memory
(:mod:`services.alerts.signal_batch`), then written back and their changes recorded in one
statement.

So a change is committed with its event and its notifications, or not at all, and neither
Kafka nor a slow webhook can block the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.alerts import change_repository as change_repo
from services.alerts import repository as repo
from services.alerts.errors import BadRequestError
from services.alerts.lifecycle import (
    Decision,
    StaffAction,
    check_snooze,
    staff_transition,
)
from services.alerts.routing import Rule, route
from services.alerts.signal_batch import Pending, SignalBatch, key_of
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
        change = self._change(
            alert, action=action, actor=actor, from_status=from_status,
            occurred_at=occurred_at, note=note, details=details, cause=cause,
        )  # fmt: skip
        await self._record(conn, [change], outcome)
        return change.event_id

    def _change(
        self,
        alert: dict[str, Any],
        *,
        action: str,
        actor: str,
        from_status: str | None,
        occurred_at: datetime,
        note: str | None = None,
        details: dict[str, Any] | None = None,
        cause: uuid.UUID | None = None,
    ) -> change_repo.Change:
        payload = _event(alert, action, actor, note, cause)
        env = Envelope.new(
            ALERT_EVENT_V1,
            tenant=alert["tenant"],
            learner_key=alert["learner_key"],
            occurred_at=occurred_at,
            payload=payload.model_dump(mode="json"),
        )
        return change_repo.Change(
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
        )

    async def _record(
        self,
        conn: repo.Conn,
        changes: Sequence[change_repo.Change],
        outcome: Outcome,
        *,
        inserted: Sequence[dict[str, Any]] = (),
        updated: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write ``changes`` in one statement, with the NOTIFYs the transaction still needs
        (and, first, the alerts ``inserted`` and ``updated``)."""
        queued = await change_repo.record_changes(
            conn,
            changes,
            inserted=inserted,
            updated=updated,
            outbox_channel=(
                None if self._outbox_channel in outcome.notified else self._outbox_channel
            ),
            deliveries_channel=(
                None if self._deliveries_channel in outcome.notified else self._deliveries_channel
            ),
        )
        outcome.notified.add(self._outbox_channel)
        if queued:
            outcome.notified.add(self._deliveries_channel)
        outcome.events += len(changes)
        outcome.deliveries += queued

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
        [decision] = await self.apply_signals(conn, [(tenant, learner_key, signal, cause)], outcome)
        return decision

    async def apply_signals(
        self,
        conn: repo.Conn,
        signals: Sequence[tuple[str, str, Signal, uuid.UUID | None]],
        outcome: Outcome,
    ) -> list[Decision]:
        """Apply ``(tenant, learner_key, signal, cause)`` in order, each one as if alone after
        the ones before it, in a few statements whatever their number: the alerts of their keys
        that are not resolved are locked and read at once (with the latest resolutions, where a
        ``raise`` may need the cooldown, and the routing rules of the tenants a ``raise`` may
        open an alert for), the decisions are made in memory
        (:class:`SignalBatch`), then the alerts changed and opened are written and the changes
        recorded (history, outbox, deliveries), all in one statement."""
        if not signals:
            return []
        keys = {key_of(t, lk, s) for t, lk, s, _ in signals}
        raised = {key_of(t, lk, s) for t, lk, s, _ in signals if s.action == "raise"}
        cleared = {key_of(t, lk, s) for t, lk, s, _ in signals if s.action == "clear"}
        locked = await change_repo.lock_keys(
            conn, sorted(keys), raised=raised, cleared=cleared, rules_for={k[0] for k in raised}
        )
        batch = SignalBatch(locked.active, locked.resolved)
        rules: dict[str, list[Rule]] = locked.rules  # only a raise opens
        pending: list[Pending] = []
        decisions: list[Decision] = []
        for tenant, learner_key, signal, cause in signals:
            key = key_of(tenant, learner_key, signal)
            decision = batch.decide(key, signal)
            decisions.append(decision)
            outcome.decisions.append((signal.kind, decision))
            if decision == "open":
                if tenant not in rules:
                    rules[tenant] = await repo.routing_rules(conn, tenant)
                team = route(
                    rules[tenant],
                    business_unit=signal.business_unit,
                    programme=signal.programme,
                    kind=signal.kind,
                    severity=signal.severity,
                )
                pending.append(batch.open(key, signal, team, cause))
                outcome.opened.append((signal.kind, signal.severity))
            elif decision == "update":
                pending.append(batch.update(key, signal, cause))
            elif decision == "resolve":
                pending.append(batch.resolve(key, signal, cause))
        if pending:
            changes = [
                self._change(
                    p.alert,
                    action=p.action,
                    actor=SYSTEM,
                    from_status=p.from_status,
                    occurred_at=p.occurred_at,
                    details=p.details,
                    cause=p.cause,
                )
                for p in pending
            ]
            await self._record(
                conn, changes, outcome, inserted=batch.inserted(), updated=batch.updated()
            )
        return decisions

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
