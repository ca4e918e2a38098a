"""The Bayes ceiling of the alert-quality benchmark (``bench/stall_ceiling.py``): the filter on
sequences whose answer is known exactly, against brute force, and the threshold search."""

from __future__ import annotations

import itertools
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from stall_ceiling import (
    Attempt,
    Belief,
    Point,
    best_precision,
    best_recall,
    calibration,
    final,
    flag_online,
    stall_filter,
    sweep,
)

from tools.simulator.learners import FAST_GUESS_CORRECT, GAMED_LEARN_FACTOR, HINT_CORRECT, Params
from tools.simulator.truth import STALL_ATTEMPTS

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def params(
    prior: float = 0.0,
    learn: float = 0.0,
    forget: float = 0.0,
    guess: float = 0.0,
    slip: float = 0.0,
) -> Params:
    return Params(prior=prior, learn=learn, forget=forget, guess=guess, slip=slip)


def attempts(answers: str, gap_days: float = 0.0, gamed: str | None = None) -> list[Attempt]:
    """``answers``: one character an attempt, ``1`` correct, ``0`` wrong; ``gap_days`` apart."""
    return [
        Attempt(T0 + timedelta(days=i * gap_days), c == "1", gamed) for i, c in enumerate(answers)
    ]


def test_without_guess_or_slip_the_answers_tell_the_state() -> None:
    p = params(prior=0.3, learn=0.4)
    wrong = stall_filter(attempts("0" * 10), p)
    assert [b.stalled for b in wrong[:9]] == [0.0] * 9
    assert wrong[8].next == pytest.approx(0.6)  # unknown after the 9th unless learnt then
    assert wrong[9].stalled == pytest.approx(1.0)
    known_at_10 = stall_filter(attempts("0" * 9 + "1"), p)
    assert final(known_at_10) == 0.0
    assert known_at_10[-1].next == 0.0


def test_fewer_attempts_than_a_stall_never_stall() -> None:
    p = params(prior=0.1, learn=0.05, forget=0.1, guess=0.2, slip=0.1)
    beliefs = stall_filter(attempts("0" * (STALL_ATTEMPTS - 1), gap_days=1.0), p)
    assert len(beliefs) == STALL_ATTEMPTS - 1
    assert all(b.stalled == 0.0 for b in beliefs)
    assert beliefs[-1].next > 0.85
    assert final([]) == 0.0


def test_never_known_never_learnt_stalls_at_the_tenth_attempt() -> None:
    p = params(prior=0.0, learn=0.0, forget=0.05, guess=0.3, slip=0.1)
    beliefs = stall_filter(attempts("0101100111", gap_days=0.5), p)
    assert [b.stalled for b in beliefs] == [0.0] * 9 + [1.0]
    assert beliefs[8].next == 1.0


def test_a_gamed_answer_says_nothing_about_knowledge() -> None:
    for gamed in ("hint", "guess"):
        beliefs = stall_filter(attempts("1" * 10, gamed=gamed), params(prior=0.5))
        assert final(beliefs) == pytest.approx(0.5)  # a real correct answer would mean known
    assert 0 < FAST_GUESS_CORRECT < HINT_CORRECT < 1


def test_a_gamed_attempt_learns_less() -> None:
    beliefs = stall_filter(attempts("0" * 10, gamed="guess"), params(learn=0.5))
    assert final(beliefs) == pytest.approx((1 - 0.5 * GAMED_LEARN_FACTOR) ** 9)


@pytest.mark.parametrize(("gap_days", "stalled"), [(1.0, 0.5), (2.0, 0.75), (0.0, 0.0)])
def test_forgetting_compounds_over_the_days_between_attempts(
    gap_days: float, stalled: float
) -> None:
    # known at the first attempt; uninformative answers; forgotten before the second or never
    p = params(prior=1.0, forget=0.5, guess=0.5, slip=0.5)
    beliefs = stall_filter(attempts("0" * 11, gap_days=gap_days), p)
    assert final(beliefs[:10]) == 0.0
    assert final(beliefs) == pytest.approx(stalled)


def test_an_impossible_answer_is_an_error() -> None:
    with pytest.raises(ValueError, match="impossible"):
        stall_filter(attempts("1"), params(prior=0.0))  # never known, never guesses


def brute_force(seq: list[Attempt], p: Params) -> float:
    """P(stalled | answers), summing over every hidden path, with the simulator's stall tracker.

    Per attempt the hidden state is ``k`` (known), ``l`` (unknown, learnt by it) or ``u``
    (unknown, still after it). The tracker counts consecutive unknown attempts and restarts
    when the competency is known, before an attempt or after its learning step.
    """
    num = den = 0.0
    for path in itertools.product("klu", repeat=len(seq)):
        weight = 1.0
        run, stalled = 0, False
        for i, (a, state) in enumerate(zip(seq, path, strict=True)):
            if i == 0:
                p_known = p.prior
            else:
                prev = seq[i - 1]
                keep = (1 - p.forget) ** ((a.at - prev.at).total_seconds() / 86_400)
                p_known = keep if path[i - 1] in "kl" else 0.0
            weight *= p_known if state == "k" else 1 - p_known
            if state != "k":
                rate = p.learn * (GAMED_LEARN_FACTOR if a.gamed else 1.0)
                weight *= rate if state == "l" else 1 - rate
            if a.gamed == "guess":
                right = FAST_GUESS_CORRECT
            elif a.gamed == "hint":
                right = HINT_CORRECT
            else:
                right = 1 - p.slip if state == "k" else p.guess
            weight *= right if a.correct else 1 - right
            run = 0 if state == "k" else run + 1
            stalled = stalled or run == STALL_ATTEMPTS
            if state == "l":
                run = 0
        den += weight
        num += weight if stalled else 0.0
    return num / den


def test_the_filter_is_the_exact_posterior() -> None:
    p = params(prior=0.3, learn=0.15, forget=0.08, guess=0.25, slip=0.1)
    days = [0, 0.01, 0.02, 1.5, 1.6, 1.61, 3, 3.2, 3.3, 6, 6.1]
    answers = "01001000100"
    gamed: list[str | None] = [None] * len(days)
    gamed[4], gamed[9] = "hint", "guess"
    seq = [
        Attempt(T0 + timedelta(days=d), c == "1", g)
        for d, c, g in zip(days, answers, gamed, strict=True)
    ]
    beliefs = stall_filter(seq, p)
    for n in (10, 11):
        assert beliefs[n - 1].stalled == pytest.approx(brute_force(seq[:n], p), rel=1e-9)
    assert 0.05 < final(beliefs) < 0.95  # a case the answers leave open


def test_the_sweep_and_the_best_thresholds() -> None:
    scores = {"a": 0.9, "b": 0.8, "c": 0.5, "d": 0.5, "e": 0.1, "f": 0.0}
    positives = {"a", "c", "e"}
    points = sweep(scores, positives)
    assert [(p.threshold, p.flagged, p.hits) for p in points] == [
        (0.9, 1, 1),
        (0.8, 2, 1),
        (0.5, 4, 2),
        (0.1, 5, 3),
        (0.0, 6, 3),
    ]
    assert best_precision(points, 0.95) == Point(0.1, 5, 3, 3)
    assert best_precision(points, 0.3) == Point(0.9, 1, 1, 3)
    assert best_precision(points[:3], 0.95) is None
    assert best_recall(points, 0.75) == Point(0.9, 1, 1, 3)
    assert best_recall(points, 0.5) == Point(0.1, 5, 3, 3)  # recall 1 at P 0.6 beats P 0.5
    assert calibration(scores, positives) == {
        "expected_stalls": pytest.approx(2.8),
        "expected_stalls_sd": pytest.approx(math.sqrt(0.09 + 0.16 + 0.25 * 2 + 0.09)),
        "true_stalls": 3,
    }
    assert math.isnan(Point(1.0, 0, 0, 3).precision)
    ties = sweep({"a": 0.9, "b": 0.8, "c": 0.7}, {"a", "b"})
    assert best_precision(ties, 0.0) == Point(0.8, 2, 2, 2)  # precision 1 twice: more recall
    assert best_recall(points, 1.01) is None


def test_online_flags_at_the_first_attempt_over_either_threshold() -> None:
    seq = attempts("0000", gap_days=1.0)
    beliefs = [Belief(0.0, 0.1), Belief(0.3, 0.5), Belief(0.45, 0.5), Belief(0.9, 0.9)]
    assert flag_online(seq, beliefs, early=0.6, late=0.4) == (seq[2].at, 3)  # late
    assert flag_online(seq, beliefs, early=0.5, late=0.4) == (seq[1].at, 2)  # early
    assert flag_online(seq, beliefs, early=0.95, late=0.95) is None
