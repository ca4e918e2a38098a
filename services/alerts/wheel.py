"""The wheel-spinning detector: many attempts on a competency without mastery. Two methods (see
:mod:`services.alerts.rules` for the definitions, defaults and how they were chosen):

* ``stall_probability`` (the default): the stall filter of :mod:`services.alerts.stall` says how
  likely it is that the learner has made ``max_attempts`` attempts in a row without knowing the
  skill, or will have at the next attempt;
* ``attempts``: Beck & Gong's count, ``max_attempts`` attempts without ``correct_in_a_row``
  right answers in a row, with the mastery model's say, and an earlier flag on mostly wrong
  answers.

Both wait for the learner to be struggling at the moment and hold an alert until mastery is
shown. When mastery is shown, the filter forgets a possible stall only once an alert was raised
on it (``reset_on_mastery``, ``after_alert`` by default): three right answers after a long run
of wrong ones may be guesses, and the filter, not the count, judges that until an alert has
been raised and resolved. Pure functions; the filter's vector lives in :class:`CompetencyState`.
"""

from __future__ import annotations

from typing import Any

from services.alerts import stall
from services.alerts.rules import WheelSpinning as WheelRule
from services.alerts.state import Attempt, CompetencyState
from shared.alert_events import Severity

EVIDENCE_IDS = 20

#: (holds, severity, evidence) of one detector on one competency
Verdict = tuple[bool, Severity, dict[str, Any]]


def trajectory(comp: CompetencyState) -> list[list[Any]]:
    return [[at.isoformat(), round(m, 4)] for at, m in comp.trajectory]


def ids(attempts: list[Attempt]) -> list[str]:
    return [a.statement_id for a in attempts[-EVIDENCE_IDS:]]


def evidential(attempt: Attempt, rule: WheelRule) -> bool:
    """Whether ``attempt`` says anything about what the learner knows: not when it came after
    ``bottom_out_hints`` hints or more (the answer was shown) or quicker than
    ``min_answer_s`` (not read: a guess)."""
    if attempt.hints >= rule.bottom_out_hints:
        return False
    return attempt.duration_s is None or attempt.duration_s >= rule.min_answer_s


def _since_mastery(comp: CompetencyState, rule: WheelRule) -> tuple[list[Attempt], list[bool]]:
    """The attempts made since the learner last showed mastery -- ``correct_in_a_row``
    evidential correct answers in a row; attempts that are not evidence neither extend nor
    break a streak -- oldest first, within the ``RECENT_ATTEMPTS`` kept, and for each of them
    :func:`evidential`."""
    since: list[Attempt] = []
    flags: list[bool] = []
    streak = 0
    for attempt in comp.recent:
        since.append(attempt)
        counts = evidential(attempt, rule)
        flags.append(counts)
        if not counts:
            continue
        streak = streak + 1 if attempt.correct else 0
        if streak >= rule.correct_in_a_row:
            since, flags, streak = [], [], 0
    return since, flags


def record_attempt(comp: CompetencyState, previous: Attempt | None, rule: WheelRule) -> None:
    """Step the stall filter with the attempt just appended to ``comp.recent`` (method
    ``stall_probability`` only). A vector of another length (``max_attempts`` changed) starts
    again. :func:`wheel_spinning` ends the stall when the answer shows mastery."""
    if not rule.enabled or rule.method != "stall_probability":
        return
    attempt = comp.recent[-1]
    vec = comp.stall
    if len(vec) != stall.size(rule.max_attempts):
        vec = stall.fresh(rule.bkt, rule.max_attempts, rule.stuck_share)
        comp.stall_attempts = 0
    counts = evidential(attempt, rule)
    factor = 1.0 if counts else rule.not_evidence_learn_factor
    gap = (attempt.at - previous.at).total_seconds() / 86400 if previous is not None else 0.0
    vec = stall.step(
        vec, rule.bkt, (factor, factor * rule.stuck_learn_factor), gap, attempt.correct, counts
    )
    comp.stall = vec
    comp.stall_attempts += 1


def wheel_spinning(comp: CompetencyState, rule: WheelRule, was_active: bool) -> Verdict:
    """Attempts without mastery, by the rule's method; held until mastery is shown. The
    evidence is only built when the condition holds (the caller drops it otherwise).

    Called once per attempt, after :func:`record_attempt`; when the latest answer shows
    mastery, it also ends any stall in the filter as ``rule.reset_on_mastery`` says: always,
    only after an alert (``was_active``), or never (``comp`` is the evaluation's own copy)."""
    since, flags = _since_mastery(comp, rule)
    if not since:  # mastery shown by the latest answers
        forget = rule.reset_on_mastery == "always" or (
            rule.reset_on_mastery == "after_alert" and was_active
        )
        if comp.stall and forget:
            comp.stall = stall.reset(comp.stall)
            comp.stall_attempts = 0
        return False, "medium", {}
    # attempts before the window kept count too when no mastery was seen in the window
    run = len(since) + (comp.attempts - len(comp.recent) if len(since) == len(comp.recent) else 0)
    answers = [a.correct for a, counts in zip(since, flags, strict=True) if counts]
    wrong = answers.count(False)
    struggling = sum(answers[-rule.recent_window :]) <= rule.recent_max_correct
    current = next((a.mastery for a in reversed(comp.recent) if a.mastery is not None), None)

    def weighed_past_mastery() -> bool:
        """Mastery was shown within the recent attempts and the filter kept weighing the
        attempts before it (``reset_on_mastery`` other than ``always``)."""
        return len(since) < len(comp.recent) and comp.stall_attempts > len(since)

    def evidence() -> dict[str, Any]:
        found: dict[str, Any] = {
            "attempts_without_mastery": run,
            "wrong": wrong,
            "not_evidence": len(since) - len(answers),
            "correct": sum(answers),
            "statement_ids": ids(since),
            "mastery_trajectory": trajectory(comp),
        }
        if current is not None:
            found["mastery"] = round(current, 4)
        if comp.stall and rule.method == "stall_probability":  # not a vector left by a switch
            found["stall_probability"] = round(stall.stalled(comp.stall), 4)
            found["stall_probability_next"] = round(stall.stalled_next(comp.stall), 4)
            found["stuck_probability"] = round(stall.stuck(comp.stall), 4)
            if comp.stall_attempts:  # 0: a vector kept by a version that did not count them
                found["attempts_weighed"] = comp.stall_attempts
            if weighed_past_mastery():  # the ids the filter weighed, not only those since
                found["statement_ids"] = ids(comp.recent[-comp.stall_attempts :])
        return found

    if struggling:
        if rule.method == "stall_probability":
            verdict = _by_probability(comp, rule, weighed_past_mastery())
        else:
            verdict = _by_attempts(since, run, wrong, current, rule)
        if verdict is not None:
            severity, text, extra = verdict
            found = evidence() | extra
            found["rule"] = text
            return True, severity, found
    if was_active:  # raised and no mastery shown since: keep it open
        found = evidence()
        found["rule"] = "not mastered yet"
        return True, "medium", found
    return False, "medium", {}


#: a method's finding: severity, the rule's text, evidence of its own
Finding = tuple[Severity, str, dict[str, Any]]


def _by_probability(comp: CompetencyState, rule: WheelRule, past_mastery: bool) -> Finding | None:
    if not comp.stall:
        return None
    now, after = stall.stalled(comp.stall), stall.stalled_next(comp.stall)
    if now < rule.raise_probability and after < rule.raise_next_probability:
        return None
    severity: Severity = "high" if now >= rule.high_probability else "medium"
    text = (
        f"{rule.max_attempts} attempts in a row without knowing the skill: probability "
        f"{now:.2f} now, {after:.2f} at the next attempt"
    )
    if past_mastery:
        text += (
            f" (over the last {comp.stall_attempts} attempts, including right answers in a row "
            "that may have been guesses)"
        )
    return severity, text, {}


def _by_attempts(
    since: list[Attempt], run: int, wrong: int, current: float | None, rule: WheelRule
) -> Finding | None:
    if run >= rule.max_attempts and (current is None or current < rule.max_mastery):
        return "high", f"no {rule.correct_in_a_row} correct in a row in {rule.max_attempts}", {}
    if rule.early_enabled and run >= rule.early_min_attempts and wrong >= rule.early_min_wrong:
        window = [a for a in since if a.mastery is not None][-rule.slope_window :]
        masteries = [a.mastery for a in window if a.mastery is not None]
        slope = (masteries[-1] - masteries[0]) / (len(masteries) - 1) if len(masteries) > 1 else 0.0
        predicted = window[-1].predicted if window else None
        if (
            (current is None or current < rule.early_max_mastery)
            and slope < rule.early_min_slope
            and (predicted is None or predicted < rule.early_max_predicted)
        ):
            text = f"{wrong} wrong in {run} attempts without mastery"
            return "medium", text, {"slope": round(slope, 4)}
    return None
