"""Each detector: positive and negative cases, at its thresholds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.alerts import stall
from services.alerts.detectors import evaluate
from services.alerts.rules import DetectorSettings, resolve
from services.alerts.state import LearnerState, Signal
from tests.unit.alerts.helpers import T0, Learner, update_env

# --- wheel-spinning ------------------------------------------------------------------------


def by_attempts(**rule: Any) -> DetectorSettings:
    """Wheel-spinning by Beck & Gong's count (method ``attempts``), with ``rule`` laid over."""
    return resolve({"wheel_spinning": {"method": "attempts", **rule}})


def no_early() -> DetectorSettings:
    return by_attempts(early_enabled=False)


def test_wheel_spinning_classic_rule_fires_at_the_tenth_attempt_without_mastery() -> None:
    learner = Learner(no_early())
    for i in range(9):
        learner.answer(correct=i % 3 == 0)  # never three in a row
    assert "wheel_spinning" not in learner.kinds()
    signals = learner.answer(correct=False)
    [ws] = [s for s in signals if s.kind == "wheel_spinning"]
    assert ws.action == "raise"
    assert ws.severity == "high"
    assert ws.evidence["attempts"] == 10
    assert len(ws.evidence["statement_ids"]) == 10
    assert ws.support == "technical"


def test_wheel_spinning_not_raised_when_three_in_a_row_came_first() -> None:
    learner = Learner(no_early())
    for correct in [False, True, True, True] + [False] * 8:
        learner.answer(correct=correct)
    assert "wheel_spinning" not in learner.kinds()


def test_wheel_spinning_threshold_is_configurable() -> None:
    learner = Learner(by_attempts(early_enabled=False, max_attempts=6))
    for _ in range(5):
        learner.answer(correct=False)
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False)
    assert "wheel_spinning" in learner.kinds()


def test_wheel_spinning_flagged_early_when_the_answers_are_mostly_wrong() -> None:
    learner = Learner(by_attempts())
    for correct in [False, True, False, False, True, False, False, False]:
        learner.answer(correct=correct, mastery_after=0.3)
    assert "wheel_spinning" not in learner.kinds()  # 8 attempts: not enough evidence yet
    learner.answer(correct=False, mastery_after=0.3)  # 9 attempts, 7 wrong
    ws = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert [s.action for s in ws] == ["raise"]
    assert ws[0].severity == "medium"
    assert ws[0].evidence["rule"] == "7 wrong in 9 attempts without mastery"
    assert ws[0].evidence["attempts_without_mastery"] == 9
    assert len(ws[0].evidence["mastery_trajectory"]) == 9
    assert len(ws[0].evidence["statement_ids"]) == 9


def test_no_early_flag_with_fewer_wrong_answers() -> None:
    learner = Learner(by_attempts())
    for correct in [True, False, True, False, False, True, False, False, False]:  # 6 wrong
        learner.answer(correct=correct, mastery_after=0.3)
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False, mastery_after=0.3)  # the tenth: the classic rule
    [ws] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["rule"] == "no 3 correct in a row in 10"
    assert ws.severity == "high"


def test_early_flag_can_also_require_the_model_to_agree() -> None:
    settings = by_attempts(early_max_mastery=0.2, early_max_predicted=0.3)
    learner = Learner(settings)
    for _ in range(9):
        learner.answer(correct=False, mastery_after=0.25, predicted_correct=0.25)
    assert "wheel_spinning" not in learner.kinds()  # the estimate is not low enough
    learner = Learner(settings)
    for _ in range(9):
        learner.answer(correct=False, mastery_after=0.15, predicted_correct=0.25)
    assert "wheel_spinning" in learner.kinds()


def test_no_early_flag_when_mastery_is_rising_and_the_slope_is_required() -> None:
    learner = Learner(by_attempts(early_min_slope=0.03))
    for i in range(9):
        learner.answer(correct=i == 4, mastery_after=0.1 + 0.05 * i)
    assert "wheel_spinning" not in learner.kinds()


def test_classic_rule_needs_the_model_to_agree() -> None:
    learner = Learner(no_early())
    for i in range(10):  # never three in a row, but the model is convinced
        learner.answer(correct=i % 3 == 0, mastery_after=0.8)
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False, mastery_after=0.45)  # the model changes its mind
    assert "wheel_spinning" in learner.kinds()


def test_classic_rule_waits_while_the_learner_is_getting_it_right() -> None:
    learner = Learner(no_early())
    for correct in [False] * 7 + [True, True, False]:  # two of the last three right
        learner.answer(correct=correct)
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False)  # one of the last three: struggling again
    assert "wheel_spinning" in learner.kinds()


def test_attempts_are_counted_from_the_last_mastery_not_the_first_attempt() -> None:
    """Mastered, forgotten, then practised in vain: a stall the old (sticky) rule never saw."""
    learner = Learner(no_early())
    for correct in [True, True, True] + [False] * 9:
        learner.answer(correct=correct)
    assert "wheel_spinning" not in learner.kinds()  # 9 attempts since the mastery
    learner.answer(correct=False)
    [ws] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["attempts_without_mastery"] == 10
    assert ws.evidence["attempts"] == 13
    assert len(ws.evidence["statement_ids"]) == 10


def test_bottom_out_hints_and_instant_answers_are_not_evidence_of_mastery() -> None:
    """Right answers after every hint (5), or a wrong one in 2 s: attempts, but neither a
    streak nor a wrong answer; a learner who games a skill they do not know is wheel-spinning."""
    learner = Learner(no_early())
    for i in range(10):
        if i % 2:
            learner.feed(evidence="hint", hints=3 * (i // 2) + 3)
            learner.answer(correct=True, hints=3 * (i // 2) + 3)
        else:
            learner.answer(correct=i == 4, duration_s=2.0 if i == 8 else 30.0)
    [ws] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.action == "raise"
    assert ws.evidence["not_evidence"] == 6
    assert ws.evidence["correct"] == 1
    assert ws.evidence["wrong"] == 3


def test_gamed_attempts_do_not_break_a_streak_either() -> None:
    learner = Learner(no_early())
    for _ in range(6):
        learner.answer(correct=False)
    learner.answer(correct=True)
    learner.answer(correct=True)
    learner.answer(correct=False, duration_s=1.0)  # a guess: not evidence
    learner.answer(correct=True)  # three evidential right answers in a row: mastery
    for _ in range(9):
        learner.answer(correct=False)
    assert "wheel_spinning" not in learner.kinds()


def test_wheel_spinning_clears_on_mastery_and_can_come_back() -> None:
    learner = Learner(no_early())
    for _ in range(10):
        learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") >= 1
    learner.answer(correct=True)
    learner.answer(correct=True)
    assert "wheel_spinning" not in learner.kinds("clear")  # not mastered yet: stays open
    learner.answer(correct=True)
    assert learner.kinds("clear").count("wheel_spinning") == 1
    raised = learner.kinds().count("wheel_spinning")
    for _ in range(9):
        learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") == raised
    learner.answer(correct=False)  # ten attempts since the mastery: stuck again
    assert learner.kinds().count("wheel_spinning") == raised + 1


def stall_of(learner: Learner) -> tuple[float, float]:
    vec = learner.state.competencies["py.basics"].stall
    return stall.stalled(vec), stall.stalled_next(vec)


def test_stall_probability_flags_before_the_tenth_wrong_answer() -> None:
    """The default method: nine wrong answers make a tenth attempt without knowing the skill
    likely (the early flag, medium); at the tenth the stall itself is near certain (high)."""
    learner = Learner()
    for _ in range(8):
        learner.answer(correct=False)
    assert "wheel_spinning" not in learner.kinds()
    assert stall_of(learner) == (0.0, 0.0)  # no run of ten is possible yet
    [ws] = [s for s in learner.answer(correct=False) if s.kind == "wheel_spinning"]
    assert ws.action == "raise"
    assert ws.severity == "medium"
    assert ws.evidence["stall_probability"] == 0.0
    assert ws.evidence["stall_probability_next"] >= 0.6
    assert ws.evidence["rule"].startswith("10 attempts in a row without knowing the skill")
    assert ws.evidence["attempts_without_mastery"] == 9
    [ws] = [s for s in learner.answer(correct=False) if s.kind == "wheel_spinning"]
    assert ws.severity == "high"
    assert ws.evidence["stall_probability"] >= 0.8


def test_stall_probability_waits_while_the_learner_is_getting_it_right() -> None:
    learner = Learner()
    for correct in [False] * 7 + [True, True, False]:
        learner.answer(correct=correct)
    assert stall_of(learner)[0] >= 0.4  # likely stalled, but two of the last three were right
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False)  # one of the last three: struggling again
    assert "wheel_spinning" in learner.kinds()


def test_stall_probability_mastery_clears_and_a_new_stall_needs_a_new_run() -> None:
    learner = Learner()
    for _ in range(12):
        learner.answer(correct=False)
    assert "wheel_spinning" in learner.kinds()
    for _ in range(3):
        learner.answer(correct=True)
    assert learner.kinds("clear") == ["failure_streak", "wheel_spinning"]
    raised = learner.kinds().count("wheel_spinning")
    assert stall_of(learner) == pytest.approx((0.0, 0.0), abs=1e-6)  # the stall is over
    for _ in range(8):
        learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") == raised  # eight: not yet
    learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") == raised + 1


def test_stall_probability_answers_that_are_not_evidence_do_not_show_mastery() -> None:
    """Ten instant right answers: none is evidence, so the learner who did not know the skill
    at the start still does not (clicking through teaches a tenth): a likely stall."""
    learner = Learner()
    for _ in range(10):
        learner.answer(correct=True, duration_s=1.0)
    [ws, *_] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["not_evidence"] == 9
    assert ws.evidence["correct"] == 0
    assert stall_of(learner)[0] == pytest.approx(0.8 * (1 - 0.15 * 0.1) ** 9, rel=0.05)


def test_stall_filter_restarts_when_the_run_length_changes() -> None:
    learner = Learner()
    for _ in range(3):
        learner.answer(correct=False)
    assert len(learner.state.competencies["py.basics"].stall) == stall.size(10)
    learner.settings = resolve({"wheel_spinning": {"max_attempts": 4}})
    learner.answer(correct=False)
    assert len(learner.state.competencies["py.basics"].stall) == stall.size(4)
    assert stall_of(learner)[0] == 0.0  # restarted at this attempt: one attempt of the run
    learner.settings = by_attempts()
    learner.answer(correct=False)  # the other method leaves the vector alone
    assert len(learner.state.competencies["py.basics"].stall) == stall.size(4)
    for _ in range(6):
        learner.answer(correct=False)
    [*_, ws] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["rule"] == "no 3 correct in a row in 10"
    assert "stall_probability" not in ws.evidence  # the left-over vector is not shown


# --- failure streak ------------------------------------------------------------------------


def test_failure_streak_at_k_and_cleared_by_a_correct_answer() -> None:
    learner = Learner(resolve({"wheel_spinning": {"enabled": False}}))
    for _ in range(3):
        learner.answer(correct=False)
    assert "failure_streak" not in learner.kinds()
    learner.answer(correct=False)
    [fs] = [s for s in learner.signals if s.kind == "failure_streak"]
    assert fs.evidence["wrong_in_a_row"] == 4
    assert len(fs.evidence["statement_ids"]) == 4
    assert fs.severity == "medium"
    learner.answer(correct=True)
    assert learner.kinds("clear") == ["failure_streak"]


def test_failure_streak_severity_high_at_twice_k() -> None:
    learner = Learner(resolve({"failure_streak": {"k": 2}, "wheel_spinning": {"enabled": False}}))
    severities = []
    for _ in range(4):
        severities += [s.severity for s in learner.answer(correct=False)]
    assert severities == ["medium", "medium", "high"]  # every further wrong answer updates


def test_failure_streak_per_competency() -> None:
    learner = Learner()
    for i in range(6):
        learner.answer(correct=False, competency=f"c{i % 2}")
    assert "failure_streak" not in learner.kinds()


# --- gaming --------------------------------------------------------------------------------


def test_too_fast_answers() -> None:
    learner = Learner()
    for _ in range(4):
        learner.answer(correct=True, duration_s=1.0)
    assert "gaming" not in learner.kinds()
    [g] = [s for s in learner.answer(correct=True, duration_s=2.9) if s.kind == "gaming"]
    assert g.evidence["patterns"] == ["too_fast"]
    assert g.evidence["fast_answers"] == 5
    assert g.support == "pastoral"


def test_answers_at_the_threshold_are_not_too_fast() -> None:
    learner = Learner()
    for _ in range(10):
        learner.answer(correct=True, duration_s=3.0)
    assert "gaming" not in learner.kinds()


def test_rapid_guessing_and_hint_abuse() -> None:
    learner = Learner(resolve({"failure_streak": {"enabled": False}}))
    for _ in range(4):
        learner.answer(correct=False, duration_s=5.0)
    g = [s for s in learner.signals if s.kind == "gaming"]
    assert g[-1].evidence["patterns"] == ["rapid_guessing"]

    hinter = Learner()
    for _ in range(3):
        for _ in range(3):
            hinter.feed(evidence="hint")
        hinter.answer(correct=True)
    g = [s for s in hinter.signals if s.kind == "gaming"]
    assert g[-1].evidence["patterns"] == ["hint_abuse"]
    assert g[-1].evidence["hint_heavy_attempts"] == 3


def test_cumulative_hint_counts_are_used_too() -> None:
    learner = Learner()
    for i in range(1, 4):
        learner.answer(correct=True, hints=3 * i)  # progress reports hints per competency
    assert "gaming" in learner.kinds()
    two_hints = Learner()
    for i in range(1, 6):
        two_hints.answer(correct=True, hints=2 * i)
    assert "gaming" not in two_hints.kinds()


def test_gaming_clears_when_the_window_is_normal_again() -> None:
    learner = Learner(resolve({"gaming": {"window": 5}}))
    for _ in range(5):
        learner.answer(correct=True, duration_s=1.0)
    assert learner.kinds() == ["gaming"]
    learner.answer(correct=True, duration_s=20.0)
    assert learner.kinds("clear") == ["gaming"]


# --- regression ----------------------------------------------------------------------------


def no_wheel() -> DetectorSettings:
    return resolve({"wheel_spinning": {"enabled": False}})


def regressions(learner: Learner, *masteries: float, **payload: Any) -> list[Signal]:
    out = []
    for m in masteries:
        out += learner.answer(correct=False, mastery_after=m, **payload)
    return [s for s in out if s.kind == "regression"]


def test_regression_after_mastery_on_a_sustained_drop() -> None:
    learner = Learner(no_wheel())
    for m in (0.5, 0.8, 0.96):
        learner.answer(correct=True, mastery_after=m)
    # drop 0.26 (not more than 0.5), then three attempts more than 0.5 below: not four yet
    assert regressions(learner, 0.7, 0.45, 0.4, 0.35) == []
    [r] = regressions(learner, 0.3)  # the fourth attempt in a row more than 0.5 below the peak
    assert r.action == "raise"
    assert r.evidence["peak"] == 0.96
    assert r.evidence["drop"] == pytest.approx(0.66)
    assert r.severity == "medium"
    [r2] = regressions(learner, 0.2)
    assert r2.severity == "high"  # drop 0.76 >= 0.7
    learner.answer(correct=True, mastery_after=0.65)  # drop 0.31: still more than drop / 2
    assert "regression" not in learner.kinds("clear")
    learner.answer(correct=True, mastery_after=0.8)
    assert "regression" in learner.kinds("clear")


def test_a_wrong_answer_after_mastery_is_not_regression() -> None:
    learner = Learner(no_wheel())
    for m in (0.6, 0.9, 0.97):
        learner.answer(correct=True, mastery_after=m)
    for _ in range(3):  # BKT wobble: a slip, then right again
        learner.answer(correct=False, mastery_after=0.62)
        learner.answer(correct=True, mastery_after=0.9)
    assert "regression" not in learner.kinds()


def test_no_regression_below_min_peak() -> None:
    learner = Learner(no_wheel())
    for m in (0.5, 0.8, 0.94):
        learner.answer(correct=True, mastery_after=m)
    assert regressions(learner, 0.3, 0.2, 0.2, 0.1) == []


def test_regression_after_progress_reported_mastered() -> None:
    learner = Learner(no_wheel())
    learner.answer(correct=True, mastery_after=0.9, mastered=True)
    assert regressions(learner, 0.35, 0.3, 0.3) == []
    assert len(regressions(learner, 0.25)) == 1


def test_regression_thresholds_are_configurable() -> None:
    learner = Learner(resolve({"regression": {"min_peak": 0.8, "sustain": 1, "drop": 0.2}}))
    learner.answer(correct=True, mastery_after=0.8)
    [r] = regressions(learner, 0.55)
    assert r.evidence["drop"] == pytest.approx(0.25)


# --- inactivity ----------------------------------------------------------------------------


def test_gap_of_n_days_raises_and_resolves_inactivity_in_event_time() -> None:
    learner = Learner()
    learner.feed(evidence="activity", competency=None)
    last = learner.at
    signals = learner.feed(evidence="activity", competency=None, gap=timedelta(days=8))
    assert [(s.kind, s.action) for s in signals] == [
        ("inactivity", "raise"),
        ("inactivity", "clear"),
    ]
    assert signals[0].at == last + timedelta(days=7)
    assert signals[0].support == "pastoral"
    assert signals[1].at == learner.at


def test_shorter_gap_or_no_programme_is_not_inactivity() -> None:
    learner = Learner()
    learner.feed(evidence="activity", competency=None)
    assert learner.feed(evidence="activity", gap=timedelta(days=6, hours=23)) == []
    unenrolled = Learner()
    unenrolled.feed(evidence="activity", programme=None, competency=None)
    assert unenrolled.feed(evidence="activity", programme=None, gap=timedelta(days=30)) == []


def test_long_inactivity_suggests_a_career_conversation() -> None:
    learner = Learner(resolve({"inactivity": {"days": 7, "career_after_days": 7}}))
    learner.feed(evidence="activity")
    [raised, _] = learner.feed(evidence="activity", gap=timedelta(days=10))
    assert raised.support == "career"


# --- state ---------------------------------------------------------------------------------


def test_replay_gives_the_same_signals_and_state_round_trips() -> None:
    updates = [update_env(T0 + timedelta(minutes=i), correct=False, duration_s=2.0)
               for i in range(12)]  # fmt: skip
    runs = []
    for _ in range(2):
        state, out = LearnerState(), []
        for env, upd in updates:
            state = LearnerState.from_bytes(state.to_bytes())
            state, signals = evaluate(state, env, upd, DetectorSettings())
            out += [(s.kind, s.action, s.severity, s.at) for s in signals]
        runs.append(out)
    assert runs[0] == runs[1]
    assert {k for k, *_ in runs[0]} == {"failure_streak", "gaming", "wheel_spinning"}
    assert str(updates[-1][0].event_id) in state.seen
