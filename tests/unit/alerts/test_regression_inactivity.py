"""The detectors over a longer time: regression (a sustained drop in mastery after a peak or
a reported mastery, its thresholds and clearing) and inactivity (a gap of n days in event
time, enrolment, and the career conversation after a long gap)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.alerts.rules import DetectorSettings, resolve
from services.alerts.state import Signal
from tests.unit.alerts.helpers import Learner

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
