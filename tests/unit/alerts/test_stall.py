"""The stall filter against a brute-force sum over every hidden path, and its edge cases."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from services.alerts import stall
from shared.framework import BktParams

#: (correct, evidence, days since the previous attempt)
Answer = tuple[bool, bool, float]


def brute_force(
    answers: list[Answer],
    bkt: BktParams,
    run: int,
    stuck_share: float,
    stuck_factor: float,
    not_evidence_factor: float,
) -> tuple[float, float, float]:
    """P(stalled), P(stalled by the next attempt) and P(stuck kind) given the answers, by
    enumerating the kind of learner and whether the skill was known at each attempt (``x``)
    and after each attempt's learning step (``y``)."""
    n = len(answers)
    total = stalled = stalled_next = stuck_mass = 0.0
    for kind, weight in ((0, 1.0 - stuck_share), (1, stuck_share)):
        for path in itertools.product((False, True), repeat=2 * n):
            x, y = path[0::2], path[1::2]
            p = weight * (bkt.prior if x[0] else 1.0 - bkt.prior)
            for i, (correct, evidence, gap) in enumerate(answers):
                if i > 0:  # forgetting between y[i-1] and x[i]
                    keep = (1.0 - bkt.forget) ** gap
                    if y[i - 1]:
                        p *= keep if x[i] else 1.0 - keep
                    elif x[i]:
                        p = 0.0
                if evidence:
                    right = 1.0 - bkt.slip if x[i] else bkt.guess
                    p *= right if correct else 1.0 - right
                rate = bkt.learn * (stuck_factor if kind else 1.0)
                rate *= 1.0 if evidence else not_evidence_factor
                if x[i]:
                    p *= 1.0 if y[i] else 0.0
                else:
                    p *= rate if y[i] else 1.0 - rate
            if p == 0.0:
                continue
            # the run as the simulator's truth counts it: an attempt made while unknown adds
            # one, a known one (or learning after an attempt) sets it back to 0
            count, was_stalled = 0, False
            for known_at, known_after in zip(x, y, strict=True):
                count = 0 if known_at else count + 1
                was_stalled = was_stalled or count >= run
                count = 0 if known_after else count
            total += p
            stalled += p if was_stalled else 0.0
            stalled_next += p if was_stalled or count >= run - 1 else 0.0
            stuck_mass += p if kind else 0.0
    return stalled / total, stalled_next / total, stuck_mass / total


def filtered(
    answers: list[Answer],
    bkt: BktParams,
    run: int,
    stuck_share: float,
    factors: tuple[float, float],
) -> list[float]:
    stuck_factor, not_evidence = factors
    vec = stall.fresh(bkt, run, stuck_share)
    for correct, evidence, gap in answers:
        f = 1.0 if evidence else not_evidence
        vec = stall.step(vec, bkt, (f, f * stuck_factor), gap, correct, evidence)
    return vec


@pytest.mark.parametrize("seed", range(12))
def test_the_filter_is_the_exact_posterior(seed: int) -> None:
    rng = random.Random(seed)
    bkt = BktParams(
        prior=round(rng.uniform(0.05, 0.6), 3),
        learn=round(rng.uniform(0.05, 0.5), 3),
        forget=round(rng.uniform(0.0, 0.2), 3),
        guess=round(rng.uniform(0.1, 0.4), 3),
        slip=round(rng.uniform(0.05, 0.3), 3),
    )
    run = rng.choice((2, 3))
    stuck_share, stuck_factor, not_evidence = rng.uniform(0, 0.3), rng.uniform(0, 0.2), 0.1
    answers = [
        (rng.random() < 0.4, rng.random() < 0.8, rng.choice((0.0, 0.5, 3.0)))
        for _ in range(rng.randint(3, 6))
    ]
    answers[0] = (answers[0][0], answers[0][1], 0.0)  # no earlier attempt to forget since
    vec = filtered(answers, bkt, run, stuck_share, (stuck_factor, not_evidence))
    want = brute_force(answers, bkt, run, stuck_share, stuck_factor, not_evidence)
    assert math.fsum(vec) == pytest.approx(1.0)
    assert (stall.stalled(vec), stall.stalled_next(vec), stall.stuck(vec)) == pytest.approx(
        want, abs=1e-12
    )


def test_wrong_answers_that_cannot_be_guesses_make_a_stall_certain() -> None:
    bkt = BktParams(prior=0.3, learn=0.2, forget=0.0, guess=0.0, slip=0.0)
    wrong: list[Answer] = [(False, True, 0.0)]
    vec = filtered(wrong * 9, bkt, 10, 0.05, (0.03, 0.1))
    assert stall.stalled(vec) == 0.0  # nine unknown attempts: not yet
    assert 0.0 < stall.stalled_next(vec) < 1.0  # the learner may have learned after the ninth
    vec = filtered(wrong * 10, bkt, 10, 0.05, (0.03, 0.1))
    assert stall.stalled(vec) == pytest.approx(1.0)


def test_a_right_answer_that_cannot_be_a_guess_breaks_the_run() -> None:
    bkt = BktParams(prior=0.3, learn=0.2, forget=0.5, guess=0.0, slip=0.0)
    answers: list[Answer] = (
        [(False, True, 1.0)] * 6 + [(True, True, 1.0)] + [(False, True, 1.0)] * 6
    )
    assert stall.stalled(filtered(answers, bkt, 10, 0.05, (0.03, 0.1))) == 0.0
    # without forgetting, twelve wrong answers are a stall: nothing learned in between
    bkt = BktParams(prior=0.3, learn=0.2, forget=0.0, guess=0.0, slip=0.0)
    only_wrong: list[Answer] = [(False, True, 1.0)] * 12
    assert stall.stalled(filtered(only_wrong, bkt, 10, 0.05, (0.03, 0.1))) == pytest.approx(1.0)
    # with it, learning after an attempt and forgetting before the next breaks the run as well
    # (as the simulator's truth counts a run); the answers cannot tell, so it is not certain
    bkt = BktParams(prior=0.3, learn=0.2, forget=0.5, guess=0.0, slip=0.0)
    assert 0.0 < stall.stalled(filtered(only_wrong, bkt, 10, 0.05, (0.03, 0.1))) < 1.0


def test_answers_that_are_not_evidence_do_not_move_the_probabilities_of_knowing() -> None:
    bkt = BktParams(prior=0.3, learn=0.0, forget=0.0, guess=0.2, slip=0.1)
    vec = filtered([(True, False, 0.0)] * 5, bkt, 10, 0.0, (0.03, 0.1))
    assert 1.0 - stall.stalled(vec) == pytest.approx(1.0)
    known = vec[2]
    assert known == pytest.approx(0.3)  # the prior: learn 0, nothing learned from the answers


def test_the_stuck_kind_gains_weight_with_every_wrong_answer() -> None:
    bkt = BktParams()
    shares = [
        stall.stuck(filtered([(False, True, 0.0)] * n, bkt, 10, 0.05, (0.03, 0.1)))
        for n in (1, 5, 15)
    ]
    assert 0.05 < shares[0] < shares[1] < shares[2] < 1.0


def test_reset_folds_the_stall_back_and_keeps_the_total() -> None:
    bkt = BktParams(guess=0.0, slip=0.0)
    vec = filtered([(False, True, 0.0)] * 12, bkt, 10, 0.05, (0.03, 0.1))
    assert stall.stalled(vec) == pytest.approx(1.0)
    again = stall.reset(vec)
    assert stall.stalled(again) == 0.0
    assert math.fsum(again) == pytest.approx(1.0)
    assert stall.stalled_next(again) == 0.0  # a new stall needs a whole new run


def test_an_impossible_answer_leaves_the_vector_as_it_was() -> None:
    bkt = BktParams(prior=1.0, learn=0.1, forget=0.0, guess=0.2, slip=0.0)
    vec = stall.fresh(bkt, 10, 0.0)
    assert stall.step(vec, bkt, (1.0, 0.03), 0.0, False, True) == vec


def test_size_and_fresh_vector() -> None:
    for run in (1, 10, 20):
        vec = stall.fresh(BktParams(prior=0.25), run, 0.1)
        assert len(vec) == stall.size(run)
        assert math.fsum(vec) == pytest.approx(1.0)
        assert stall.stalled(vec) == 0.0
        assert stall.stuck(vec) == pytest.approx(0.1)
