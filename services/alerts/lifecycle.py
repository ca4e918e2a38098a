"""The alert lifecycle as pure rules: which staff action is allowed from which status, and what a
detector signal does to the alert of its learner x kind x competency.

::

    (signal raise) --> open --acknowledge--> acknowledged --resolve--> resolved
                        |  \\--snooze--> snoozed --(time runs out)--> open
                        \\--resolve--> resolved            (assign: any status but resolved)
    (signal clear) --> resolved (auto)

At most one alert that is not resolved exists per learner x kind x competency (a partial unique
index enforces it); a ``raise`` while one exists adds evidence to it (``updated``). After a
resolution, a ``raise`` within the kind's cooldown (event time) is suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.alerts.errors import ConflictError
from services.alerts.state import Signal
from shared.alert_events import AlertAction, AlertStatus, Severity

StaffAction = Literal["acknowledge", "resolve", "assign", "snooze"]

_ALLOWED: dict[StaffAction, frozenset[AlertStatus]] = {
    "acknowledge": frozenset({"open", "snoozed"}),
    "resolve": frozenset({"open", "acknowledged", "snoozed"}),
    "assign": frozenset({"open", "acknowledged", "snoozed"}),
    "snooze": frozenset({"open", "acknowledged"}),
}
_RESULT: dict[StaffAction, AlertStatus | None] = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "assign": None,  # unchanged
    "snooze": "snoozed",
}
_PAST: dict[StaffAction, AlertAction] = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "assign": "assigned",
    "snooze": "snoozed",
}
SEVERITY_RANK: dict[Severity, int] = {"low": 0, "medium": 1, "high": 2}


def staff_transition(status: AlertStatus, action: StaffAction) -> tuple[AlertStatus, AlertAction]:
    """The status after ``action`` and the name of the change; :class:`ConflictError` if the
    action is not allowed from ``status``."""
    if status not in _ALLOWED[action]:
        raise ConflictError(f"cannot {action} an alert that is {status}")
    return _RESULT[action] or status, _PAST[action]


def check_snooze(until: datetime, now: datetime) -> None:
    if until <= now:
        raise ConflictError("snooze until a time in the future")


def max_severity(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


Decision = Literal["open", "update", "resolve", "suppress", "ignore"]


@dataclass(frozen=True)
class Current:
    """What the database holds for a signal's learner x kind x competency."""

    active_status: AlertStatus | None  # the alert that is not resolved, if any
    last_resolved_at: datetime | None  # the latest resolution, if any


def decide(signal: Signal, current: Current) -> Decision:
    """What ``signal`` does, given ``current``."""
    if signal.action == "clear":
        return "resolve" if current.active_status is not None else "ignore"
    if current.active_status is not None:
        return "update"
    cooldown = timedelta(hours=signal.cooldown_hours)
    if current.last_resolved_at is not None and signal.at < current.last_resolved_at + cooldown:
        return "suppress"
    return "open"
