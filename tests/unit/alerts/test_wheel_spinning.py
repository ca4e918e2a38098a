"""The wheel-spinning detector by Beck & Gong's count (method ``attempts``): the classic rule
(ten attempts since the last mastery without three right in a row, and the model agreeing),
the early flag on mostly wrong answers, answers that are not evidence (bottom-out hints,
instant answers), and clearing on mastery."""

from __future__ import annotations

from tests.unit.alerts.helpers import Learner
from tests.unit.alerts.wheel_settings import by_attempts, no_early


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
