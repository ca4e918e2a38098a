"""The short-window answer-pattern detectors: the failure streak (k wrong in a row per
competency, its severity, cleared by a right answer) and gaming (too-fast answers, rapid
guessing, hint abuse, cumulative hint counts, clearing when the window is normal again)."""

from __future__ import annotations

from services.alerts.rules import resolve
from tests.unit.alerts.helpers import Learner

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
