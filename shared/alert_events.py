"""Payload of ``alerts.events`` (schema ``skillstream.alert_event.v1``, key
``"<tenant>|<learner_key>"``): one record per lifecycle change of an alert.

Written by the alerts service through its transactional outbox; readers are idempotent by the
envelope's ``event_id`` (one per history entry). Frozen and strict: adding an optional field is
compatible, anything else is a new schema version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import ALERT_EVENT_V1

AlertKind = Literal[
    "wheel_spinning", "failure_streak", "inactivity", "gaming", "regression", "missed_sessions"
]
Severity = Literal["low", "medium", "high"]
Support = Literal["technical", "pastoral", "career"]
AlertStatus = Literal["open", "acknowledged", "snoozed", "resolved"]
AlertAction = Literal[
    "opened",  # a detector raised it
    "updated",  # more evidence for an alert that is not resolved
    "acknowledged",
    "assigned",
    "snoozed",
    "unsnoozed",  # the snooze ran out
    "resolved",  # by staff (actor is the token's name) or by the system (condition cleared)
]


class AlertEvent(BaseModel):
    """One change of one alert, with the alert's state after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: uuid.UUID
    action: AlertAction
    actor: str = Field(min_length=1, max_length=200)  # "system" or "staff:<token name>"
    kind: AlertKind
    competency: str | None = None
    programme: str | None = None
    business_unit: str | None = None
    severity: Severity
    support: Support
    status: AlertStatus
    team: str | None = None
    assignee: str | None = None
    snoozed_until: datetime | None = None
    note: str | None = None
    first_seen_at: datetime  # event time of the first evidence
    last_seen_at: datetime  # event time of the latest evidence
    evidence: dict[str, Any] = Field(default_factory=dict)
    #: the statement whose progress update made the detectors act (``opened``, ``updated`` and
    #: ``resolved`` by the system from the stream); none for staff actions and timer changes
    #: (inactivity scans, snoozes running out). Not always among ``evidence.statement_ids``:
    #: a gaming alert's evidence lists the suspicious answers, its cause is the latest one.
    cause_statement_id: uuid.UUID | None = None


SCHEMAS: dict[str, type[BaseModel]] = {ALERT_EVENT_V1: AlertEvent}
