"""Each detector: positive and negative cases, at its thresholds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.alerts.detectors import evaluate
from services.alerts.rules import DetectorSettings, resolve
from services.alerts.state import LearnerState
from tests.unit.alerts.helpers import T0, Learner, update_env

# --- wheel-spinning ------------------------------------------------------------------------


def no_early() -> DetectorSettings:
    return resolve({"wheel_spinning": {"early_enabled": False}})


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
    learner = Learner(resolve({"wheel_spinning": {"early_enabled": False, "max_attempts": 6}}))
    for _ in range(5):
        learner.answer(correct=False)
    assert "wheel_spinning" not in learner.kinds()
    learner.answer(correct=False)
    assert "wheel_spinning" in learner.kinds()


def test_wheel_spinning_flagged_early_when_mastery_is_low_and_flat() -> None:
    learner = Learner()
    for i in range(5):
        learner.answer(correct=i == 2, mastery_after=0.2 + 0.01 * i, predicted_correct=0.3)
    ws = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert [s.action for s in ws] == ["raise"]
    assert ws[0].severity == "medium"
    assert ws[0].evidence["rule"] == "mastery model: low and flat"
    assert len(ws[0].evidence["mastery_trajectory"]) == 5


def test_no_early_flag_when_mastery_is_rising() -> None:
    learner = Learner()
    for i in range(6):
        learner.answer(correct=i % 2 == 0, mastery_after=0.1 + 0.07 * i, predicted_correct=0.4)
    assert "wheel_spinning" not in learner.kinds()


def test_wheel_spinning_clears_on_mastery() -> None:
    learner = Learner(no_early())
    for _ in range(10):
        learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") >= 1
    for _ in range(3):
        learner.answer(correct=True)
    assert learner.kinds("clear").count("wheel_spinning") == 1
    learner.answer(correct=False)  # mastered: never raised again on this competency
    assert learner.signals[-1].kind != "wheel_spinning" or learner.signals[-1].action == "clear"


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


def test_regression_from_peak() -> None:
    learner = Learner(resolve({"wheel_spinning": {"enabled": False}}))
    for m in (0.5, 0.7, 0.8):
        learner.answer(correct=True, mastery_after=m)
    learner.answer(correct=False, mastery_after=0.61)  # drop 0.19: not yet
    assert "regression" not in learner.kinds()
    [r] = [s for s in learner.answer(correct=False, mastery_after=0.55) if s.kind == "regression"]
    assert r.evidence["peak"] == 0.8
    assert r.evidence["drop"] == pytest.approx(0.25)
    assert r.severity == "medium"
    [r2] = [s for s in learner.answer(correct=False, mastery_after=0.4) if s.kind == "regression"]
    assert r2.severity == "high"
    learner.answer(correct=True, mastery_after=0.65)  # within drop/2 = 0.1 of... not yet
    assert learner.kinds("clear") == []
    learner.answer(correct=True, mastery_after=0.75)
    assert learner.kinds("clear") == ["regression"]


def test_no_regression_below_min_peak() -> None:
    learner = Learner()
    for m in (0.5, 0.55, 0.2):
        learner.answer(correct=True, mastery_after=m)
    assert "regression" not in learner.kinds()


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
