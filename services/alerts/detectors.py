"""The stall detectors: pure functions from (learner state, one progress update, settings) to
(new state, signals). Event time only, so a replay of the same updates gives the same signals.

Definitions and defaults are in :mod:`services.alerts.rules`. Signals are edge-aware: a detector
whose condition holds emits ``raise`` on every attempt it holds for (each one adds evidence to
the open alert); when the condition stops holding after a raise it emits ``clear`` once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.alerts.rules import DetectorSettings, FailureStreak, Gaming, Regression
from services.alerts.rules import WheelSpinning as WheelRule
from services.alerts.state import (
    RECENT_ATTEMPTS,
    SEEN_EVENTS,
    TRAJECTORY_POINTS,
    Attempt,
    CompetencyState,
    LearnerState,
    Signal,
)
from services.alerts.wheel import (
    EVIDENCE_IDS,
    Verdict,
    ids,
    record_attempt,
    trajectory,
    wheel_spinning,
)
from shared.alert_events import AlertKind, Severity, Support
from shared.envelope import Envelope
from shared.events import ProgressUpdate


def failure_streak(comp: CompetencyState, rule: FailureStreak) -> Verdict:
    if comp.wrong_streak < rule.k:
        return False, "medium", {}
    streak = comp.recent[-comp.wrong_streak :]
    severity: Severity = "high" if comp.wrong_streak >= 2 * rule.k else "medium"
    return True, severity, {"wrong_in_a_row": comp.wrong_streak, "statement_ids": ids(streak)}


def gaming(comp: CompetencyState, rule: Gaming) -> Verdict:
    window = comp.recent[-rule.window :]
    fast = [a for a in window if a.duration_s is not None and a.duration_s < rule.fast_answer_s]
    guesses = [
        a
        for a in window
        if not a.correct and a.duration_s is not None and a.duration_s < rule.guess_s
    ]
    hinted = [a for a in window if a.hints >= rule.hints_per_attempt]
    patterns = []
    involved: list[Attempt] = []
    if len(fast) >= rule.fast_min:
        patterns.append("too_fast")
        involved += fast
    if len(guesses) >= rule.guess_min:
        patterns.append("rapid_guessing")
        involved += guesses
    if len(hinted) >= rule.hint_abuse_min:
        patterns.append("hint_abuse")
        involved += hinted
    if not patterns:
        return False, "medium", {}
    seen: dict[str, None] = dict.fromkeys(a.statement_id for a in involved)
    return (
        True,
        "high" if len(patterns) > 1 else "medium",
        {
            "patterns": patterns,
            "window": len(window),
            "fast_answers": len(fast),
            "fast_wrong_answers": len(guesses),
            "hint_heavy_attempts": len(hinted),
            "statement_ids": list(seen)[-EVIDENCE_IDS:],
        },
    )


def regression(comp: CompetencyState, rule: Regression, was_active: bool) -> Verdict:
    if comp.peak is None or not comp.trajectory:
        return False, "medium", {}
    if comp.peak < rule.min_peak and not comp.model_mastered:
        return False, "medium", {}
    current = comp.trajectory[-1][1]
    drop = comp.peak - current
    if was_active:
        holds = drop > rule.drop / 2
    else:
        recent = comp.trajectory[-rule.sustain :]
        holds = len(recent) == rule.sustain and all(comp.peak - m > rule.drop for _, m in recent)
    if not holds:
        return False, "medium", {}
    return (
        True,
        "high" if drop >= rule.high_drop else "medium",
        {
            "peak": round(comp.peak, 4),
            "peak_at": comp.peak_at.isoformat() if comp.peak_at else None,
            "mastery": round(current, 4),
            "drop": round(drop, 4),
            "mastery_trajectory": trajectory(comp),
            "statement_ids": ids(comp.recent[-5:]),
        },
    )


def _record(comp: CompetencyState, update: ProgressUpdate, at: datetime, rule: WheelRule) -> None:
    assert update.correct is not None
    comp.attempts = max(comp.attempts + 1, update.attempts)
    comp.correct_streak = comp.correct_streak + 1 if update.correct else 0
    comp.wrong_streak = 0 if update.correct else comp.wrong_streak + 1
    attempt = Attempt(
        statement_id=str(update.statement_id),
        at=at,
        correct=update.correct,
        duration_s=update.duration_s,
        hints=comp.hints_pending,
        mastery=update.mastery_after,
        predicted=update.predicted_correct,
    )
    comp.hints_pending = 0
    previous = comp.recent[-1] if comp.recent else None
    comp.recent = [*comp.recent, attempt][-RECENT_ATTEMPTS:]
    record_attempt(comp, previous, rule)
    if update.mastery_after is not None:
        comp.trajectory = [*comp.trajectory, (at, update.mastery_after)][-TRAJECTORY_POINTS:]
        if comp.peak is None or update.mastery_after > comp.peak:
            comp.peak, comp.peak_at = update.mastery_after, at
    if update.mastered:
        comp.model_mastered = True
    if update.mastered or comp.correct_streak >= rule.correct_in_a_row:
        comp.mastered = True


def _inactivity(state: LearnerState, at: datetime, settings: DetectorSettings) -> list[Signal]:
    """A gap of ``days`` or more before this evidence: the learner was inactive and is back.

    Emitted from the event stream so a replay gives the alert (raise at ``last + days``) and its
    resolution (at this event) whatever the scanner did; live, the scanner has usually raised it
    already and the raise only adds evidence.
    """
    rule = settings.inactivity
    last = state.last_activity
    if not rule.enabled or last is None or state.programme is None:
        return []
    gap = at - last
    if gap < timedelta(days=rule.days):
        return []
    return [
        inactivity_signal(state, last, last + timedelta(days=rule.days), settings),
        Signal(
            kind="inactivity",
            action="clear",
            programme=state.programme,
            business_unit=state.business_unit,
            at=at,
            evidence={"active_again_at": at.isoformat()},
        ),
    ]


def inactivity_signal(
    state: LearnerState | None,
    last: datetime,
    now: datetime,
    settings: DetectorSettings,
    *,
    programme: str | None = None,
    business_unit: str | None = None,
) -> Signal:
    """The ``raise`` for a learner silent since ``last``, judged at ``now`` (used by the
    stream and by the scanner, so both build the same alert)."""
    rule = settings.inactivity
    days = (now - last).total_seconds() / 86400
    return Signal(
        kind="inactivity",
        action="raise",
        programme=state.programme if state else programme,
        business_unit=state.business_unit if state else business_unit,
        severity="high" if days >= 2 * rule.days else "medium",
        support="career" if days >= rule.career_after_days else rule.support,
        at=now,
        cooldown_hours=rule.cooldown_hours,
        evidence={"last_activity_at": last.isoformat(), "inactive_days": round(days, 2)},
    )


def _verdicts(
    comp: CompetencyState, s: DetectorSettings
) -> list[tuple[AlertKind, Verdict, float, Support]]:
    active = set(comp.active)
    out: list[tuple[AlertKind, Verdict, float, Support]] = []
    if s.wheel_spinning.enabled:
        v = wheel_spinning(comp, s.wheel_spinning, "wheel_spinning" in active)
        out.append(("wheel_spinning", v, s.wheel_spinning.cooldown_hours, s.wheel_spinning.support))
    if s.failure_streak.enabled:
        v = failure_streak(comp, s.failure_streak)
        out.append(("failure_streak", v, s.failure_streak.cooldown_hours, s.failure_streak.support))
    if s.gaming.enabled:
        out.append(("gaming", gaming(comp, s.gaming), s.gaming.cooldown_hours, s.gaming.support))
    if s.regression.enabled:
        v = regression(comp, s.regression, "regression" in active)
        out.append(("regression", v, s.regression.cooldown_hours, s.regression.support))
    return out


def evaluate(
    previous: LearnerState, env: Envelope, update: ProgressUpdate, settings: DetectorSettings
) -> tuple[LearnerState, list[Signal]]:
    """Apply one progress update; return the new state and the signals, in order."""
    # copy on write: the learner shell and the one competency touched are copied; every list
    # is replaced rather than changed in place and attempts are frozen, so the rest is shared
    state = previous.model_copy()
    state.competencies = dict(previous.competencies)
    at = env.occurred_at
    state.seen = [*state.seen, str(env.event_id)][-SEEN_EVENTS:]
    if update.programme is not None:
        state.programme = update.programme
    if update.business_unit is not None:
        state.business_unit = update.business_unit
    signals = _inactivity(state, at, settings)
    if state.last_activity is None or at > state.last_activity:
        state.last_activity = at
    if update.competency is None or update.evidence not in ("attempt", "hint"):
        return state, signals
    known = state.competencies.get(update.competency)
    comp = CompetencyState() if known is None else known.model_copy()
    state.competencies[update.competency] = comp
    delta = max(0, update.hints - comp.last_hints)
    comp.last_hints = max(comp.last_hints, update.hints)
    if update.evidence == "hint":
        comp.hints_pending += delta or 1
        return state, signals
    comp.hints_pending += delta
    if update.correct is None:
        return state, signals
    _record(comp, update, at, settings.wheel_spinning)
    active = set(comp.active)
    for kind, (holds, severity, evidence), cooldown, support in _verdicts(comp, settings):
        if holds:
            active.add(kind)
        elif kind in active:
            active.discard(kind)
        else:
            continue
        signals.append(
            Signal(
                kind=kind,
                action="raise" if holds else "clear",
                competency=update.competency,
                programme=state.programme,
                business_unit=state.business_unit,
                severity=severity,
                support=support,
                at=at,
                cooldown_hours=cooldown,
                evidence=evidence | {"attempts": comp.attempts} if holds else {},
            )
        )
    comp.active = sorted(active)
    return state, signals
