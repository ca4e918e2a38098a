"""Missed live sessions: which scheduled sessions a learner was expected at, and the walk through
them that raises and clears ``missed_sessions`` alerts. Pure functions, no I/O: the scanner
(:mod:`services.alerts.scanner`) reads the rows and applies the signals.

Where the data comes from (all in the alerts schema, see ``migrations/0004_live_sessions.sql``):

* the schedule: ``live_sessions``, loaded by ``python -m services.alerts.cli programmes load``
  from the same framework file the progress service loads (``shared/framework.py``), with the
  programmes' calendars and their cohorts' learners (turned into learner keys with the
  deployment's salt, as progress does);
* who is expected: a session with a ``cohort`` expects that cohort's learners; one without
  expects every learner of the programme -- the cohorts' learners, and learners whose progress
  updates name the programme (their current one, ``learner_activity``), only at the sessions
  that end after their first such update (``programme_since``): a learner who joins late is not
  charged with the sessions held before, nor is one active before this detector was deployed
  (their ``programme_since`` starts at their first evidence after it);
* attendance: progress updates of kind ``attendance`` with a ``session_id``, recorded by the
  stream in the batch's transaction (``session_attendance``, event time). It counts for its
  session when its event time is at most the session's due time (below).

The walk (:func:`walk`) decides a learner's sessions in order of their end, a group of sessions
ending at the same instant at a time: a session is *attended* when there is attendance evidence
for it, *missed* when there is none ``grace_hours`` after its end (attendance statements may be
sent late) by the reference clock -- the scanner's, the same as inactivity's: wall time live,
the event clock (a low watermark) in a replay. The walk stops at the first group not decided
yet and keeps where it stopped (``checked_through``) and the sessions missed in a row since the
last one attended (``missed``), so every session is decided once.

* ``m`` sessions missed in a row: ``raise`` as of the due time of the ``m``-th (its end plus the
  grace), then one ``raise`` per further session missed (new evidence on the open alert);
  severity high from ``2m``. Not raised when the learner already attended a later session
  before that due time (the condition had cleared before it could be known).
* a session attended after such a run: ``clear`` at the attendance's event time.
* a run only counts sessions that ended after the learner's last ``missed_sessions`` alert was
  resolved: an alert a coach resolved is not reopened for the sessions it was about.

Every time is event time or derived from the schedule, so a replay on the event clock raises
and clears the same alerts at the same times as the live run (given attendance reaches the
service within the grace period), whenever the scanner happens to run.

Limit: the alert has no competency, so a learner expected in two programmes' sessions has one
``missed_sessions`` alert (the runs are counted per programme; either can raise or clear it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Final

from services.alerts.rules import MissedSessions
from services.alerts.state import Signal
from shared.alert_events import AlertKind

KIND: Final[AlertKind] = "missed_sessions"
EVIDENCE_SESSIONS = 20  # session ids kept in the evidence


@dataclass(frozen=True)
class Session:
    id: str
    starts_at: datetime
    ends_at: datetime
    cohort: str | None = None


@dataclass(frozen=True)
class Walk:
    """Where a learner's walk through a programme's sessions stands."""

    checked_through: datetime | None = None  # end of the last group of sessions decided
    missed: tuple[str, ...] = ()  # missed in a row since the last attended, oldest first


@dataclass(frozen=True)
class Learner:
    """A learner expected at a programme's sessions."""

    tenant: str
    programme: str
    learner_key: str
    cohort: str | None  # listed in this cohort of the framework file
    since: datetime | None  # first progress update naming the programme (event time)
    walk: Walk


def expected(
    sessions: Iterable[Session], cohort: str | None, since: datetime | None
) -> list[Session]:
    """The sessions a learner is expected at, by end (then id). A learner listed in a cohort is
    expected at that cohort's sessions and the programme-wide ones; a learner only known from
    their evidence at the programme-wide ones that end after their first evidence."""
    out = [
        s
        for s in sessions
        if (s.cohort is None or s.cohort == cohort)
        and (cohort is not None or since is None or s.ends_at > since)
    ]
    return sorted(out, key=lambda s: (s.ends_at, s.id))


def _evidence(run: Sequence[Session], rule: MissedSessions) -> dict[str, object]:
    last = run[-1]
    return {
        "missed_in_a_row": len(run),
        "session_ids": [s.id for s in run[-EVIDENCE_SESSIONS:]],
        "first_missed_start": run[0].starts_at.isoformat(),
        "last_missed_end": last.ends_at.isoformat(),
        "rule": f"{rule.m} scheduled live sessions missed in a row",
    }


def walk(
    state: Walk,
    sessions: Sequence[Session],
    attended: Mapping[str, datetime],
    ref: datetime,
    rule: MissedSessions,
    *,
    resolved_at: datetime | None = None,
    programme: str | None = None,
    business_unit: str | None = None,
) -> tuple[Walk, list[Signal]]:
    """Decide the sessions after ``state`` (``sessions``: the learner's expected ones, by end;
    ``attended``: session id -> attendance event time) up to ``ref``; returns the new state
    and the signals, in order."""
    grace = timedelta(hours=rule.grace_hours)
    by_id = {s.id: s for s in sessions}
    # attendance counts for its session up to the session's due time: later evidence would be
    # known to a replay but not to the live run when the session was decided
    attended = {
        i: at for i, at in attended.items() if i in by_id and at <= by_id[i].ends_at + grace
    }
    run = [by_id[i] for i in state.missed if i in by_id]
    checked = state.checked_through
    todo = [s for s in sessions if checked is None or s.ends_at > checked]
    groups = [list(g) for _, g in groupby(todo, key=lambda s: s.ends_at)]
    signals: list[Signal] = []
    for n, group in enumerate(groups):
        due = group[0].ends_at + grace
        if due > ref and not all(s.id in attended for s in group):
            break  # not decided yet: later groups wait for it
        present = [s for s in group if s.id in attended]
        if present:
            back = min(attended[s.id] for s in present)
            # raised for this run: unless the m-th miss was not, being cleared by this already
            if len(run) > rule.m or (len(run) == rule.m and back > run[-1].ends_at + grace):
                signals.append(_clear(present[0], back, programme, business_unit))
            run = []
        else:
            run += group
            if resolved_at is not None:
                run = [s for s in run if s.ends_at > resolved_at]
            nxt = groups[n + 1] if n + 1 < len(groups) else []
            back_before = any(s.id in attended and attended[s.id] <= due for s in nxt)
            if rule.enabled and len(run) >= rule.m and not back_before:
                signals.append(_raise(run, due, rule, programme, business_unit))
        checked = group[0].ends_at
    return Walk(checked, tuple(s.id for s in run)), signals


def _raise(
    run: Sequence[Session],
    at: datetime,
    rule: MissedSessions,
    programme: str | None,
    business_unit: str | None,
) -> Signal:
    return Signal(
        kind=KIND,
        action="raise",
        programme=programme,
        business_unit=business_unit,
        severity="high" if len(run) >= 2 * rule.m else "medium",
        support=rule.support,
        at=at,
        cooldown_hours=rule.cooldown_hours,
        evidence=_evidence(run, rule),
    )


def _clear(
    session: Session, at: datetime, programme: str | None, business_unit: str | None
) -> Signal:
    return Signal(
        kind=KIND,
        action="clear",
        programme=programme,
        business_unit=business_unit,
        at=at,
        evidence={"attended_session_id": session.id, "attended_at": at.isoformat()},
    )


# --- rows the stream records (see Processor.apply_batch) -----------------------------------------

#: ``(tenant, programme, learner_key, session_id, attended_at)``
AttendanceRow = tuple[str, str, str, str, datetime]


def attendance_rows(
    updates: Iterable[tuple[str, str, datetime, str, str | None, str | None]],
) -> list[AttendanceRow]:
    """From ``(tenant, learner_key, occurred_at, evidence, programme, session_id)`` of a batch's
    new updates: the earliest attendance per learner and session of a programme, sorted (a
    fixed lock order)."""
    attendance: dict[tuple[str, str, str, str], datetime] = {}
    for tenant, learner_key, at, evidence, programme, session_id in updates:
        if evidence == "attendance" and programme is not None and session_id is not None:
            key = (tenant, programme, learner_key, session_id)
            attendance[key] = min(at, attendance.get(key, at))
    return [(*k, at) for k, at in sorted(attendance.items())]
