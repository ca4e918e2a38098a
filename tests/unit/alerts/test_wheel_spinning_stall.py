"""The wheel-spinning detector by stall probability (the default method): the early flag
before the tenth wrong answer and the high one at it, waiting while the learner gets it
right, clearing on mastery, what the filter keeps when mastery is shown (``reset_on_mastery``),
answers that are not evidence, and the stall filter restarting when the run length or the
method changes."""

from __future__ import annotations

import pytest

from services.alerts import stall
from services.alerts.rules import resolve
from tests.unit.alerts.helpers import Learner
from tests.unit.alerts.wheel_settings import by_attempts


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
    assert ws.evidence["stall_probability_next"] >= 0.75
    assert ws.evidence["rule"].startswith("10 attempts in a row without knowing the skill")
    assert ws.evidence["attempts_without_mastery"] == 9
    assert ws.evidence["attempts_weighed"] == 9
    assert len(ws.evidence["statement_ids"]) == 9
    assert "guesses" not in ws.evidence["rule"]
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
    [*_, ws] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["attempts_weighed"] == 9  # counted from the mastery shown


def test_mastery_shown_before_any_alert_keeps_the_evidence_of_a_stall() -> None:
    """The default (``after_alert``): eight wrong answers, then three right ones -- maybe the
    skill was learnt, maybe three guesses. No alert was raised, so the filter keeps both
    readings; two more wrong answers make the guesses likely, and with them a run of ten
    attempts without the skill: raised. ``always`` forgets it at the third right answer."""
    answers = [False] * 8 + [True] * 3
    kept, forgot = Learner(), Learner(resolve({"wheel_spinning": {"reset_on_mastery": "always"}}))
    for learner in (kept, forgot):
        for correct in answers:
            learner.answer(correct=correct)
        assert "wheel_spinning" not in learner.kinds()
    assert 0.02 < stall_of(kept)[0] < 0.2
    assert stall_of(forgot) == pytest.approx((0.0, 0.0), abs=1e-6)
    for learner in (kept, forgot):
        learner.answer(correct=False)
        learner.answer(correct=False)
    assert stall_of(kept)[0] >= 0.45
    assert kept.kinds().count("wheel_spinning") == 1
    assert "wheel_spinning" not in forgot.kinds()  # a new run of ten is needed
    # the evidence shows what the filter weighed, not only the two answers since the streak
    [ws] = [s for s in kept.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["attempts_without_mastery"] == 2
    assert ws.evidence["attempts_weighed"] == 13
    assert len(ws.evidence["statement_ids"]) == 13
    assert ws.evidence["rule"].endswith(
        "(over the last 13 attempts, including right answers in a row that may have been guesses)"
    )


def test_never_forgetting_a_stall_raises_again_at_the_next_wrong_answer() -> None:
    """``never``: the filter keeps a stall after the alert it raised was cleared by mastery,
    so the next wrong answer raises again (the lifecycle's cooldown then holds the alert)."""
    learner = Learner(resolve({"wheel_spinning": {"reset_on_mastery": "never"}}))
    for correct in [False] * 12 + [True] * 3:
        learner.answer(correct=correct)
    assert "wheel_spinning" in learner.kinds("clear")
    assert stall_of(learner)[0] > 0.9
    raised = learner.kinds().count("wheel_spinning")
    learner.answer(correct=False)
    assert learner.kinds().count("wheel_spinning") == raised + 1


def test_stall_probability_answers_that_are_not_evidence_do_not_show_mastery() -> None:
    """Ten instant right answers: none is evidence, so the learner who did not know the skill
    at the start still does not (clicking through teaches a tenth): a likely stall."""
    learner = Learner()
    for _ in range(10):
        learner.answer(correct=True, duration_s=1.0)
    [ws, *_] = [s for s in learner.signals if s.kind == "wheel_spinning"]
    assert ws.evidence["not_evidence"] == 10  # raised at the tenth: a stall by now
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
