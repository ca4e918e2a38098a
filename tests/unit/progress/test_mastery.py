"""BKT with forgetting and Elo: update arithmetic, numerical safety, monotonicity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.progress.mastery import (
    DEFAULT_BKT,
    LOGIT_CAP,
    BktModel,
    EloModel,
    EloParams,
    EloState,
    MasteryModel,
    MasteryState,
    initial,
    model_for,
    predict,
    record_activity,
    sigmoid,
    update,
)
from shared.framework import BktParams, Competency, Framework

P = BktParams(prior=0.3, learn=0.1, forget=0.05, guess=0.2, slip=0.1)
T0 = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


def test_prediction_and_updates_match_hand_computation() -> None:
    s0 = initial(P)
    assert s0.mastery == pytest.approx(0.3)
    assert predict(s0, P) == pytest.approx(0.3 * 0.9 + 0.7 * 0.2)  # 0.41
    # correct: posterior 0.27 / 0.41, then learn 0.1 / forget 0.05
    right = update(s0, P, correct=True)
    assert right.mastery == pytest.approx((0.27 * 0.95 + 0.14 * 0.1) / 0.41)  # 0.659756
    # wrong: posterior 0.03 / 0.59
    wrong = update(s0, P, correct=False)
    assert wrong.mastery == pytest.approx((0.03 * 0.95 + 0.56 * 0.1) / 0.59)  # 0.143220
    assert right.last_prediction == pytest.approx(0.41)
    assert wrong.last_prediction == pytest.approx(0.41)


def test_partial_weight_is_a_mixture_with_no_change() -> None:
    half = update(initial(P), P, correct=True, weight=0.5)
    full = (0.27 * 0.95 + 0.14 * 0.1) / 0.41
    assert half.mastery == pytest.approx(0.5 * full + 0.5 * 0.3)


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5])
def test_weight_outside_unit_interval_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        update(initial(P), P, correct=True, weight=weight)


def test_counters_streaks_time_and_recency() -> None:
    s = initial(P)
    s = update(s, P, correct=True, at=T0, duration_s=30.0)
    s = update(s, P, correct=True, at=T0.replace(minute=5), duration_s=12.5)
    assert (s.attempts, s.correct, s.correct_streak, s.wrong_streak) == (2, 2, 2, 0)
    s = update(s, P, correct=False, at=T0.replace(minute=1))  # late arrival: recency keeps max
    assert (s.attempts, s.correct, s.correct_streak, s.wrong_streak) == (3, 2, 0, 1)
    assert s.last_event_at == T0.replace(minute=5)
    assert s.time_on_task_s == pytest.approx(42.5)
    touched = record_activity(s, T0.replace(hour=10), 60.0)
    assert touched.mastery == s.mastery
    assert touched.attempts == 3
    assert touched.last_event_at == T0.replace(hour=10)
    assert touched.time_on_task_s == pytest.approx(102.5)


@pytest.mark.parametrize("forget", [0.0, 0.02])
def test_ten_thousand_correct_never_lock_mastery_at_one(forget: float) -> None:
    params = BktParams(prior=0.2, learn=0.3, forget=forget, guess=0.05, slip=0.05)
    s = initial(params)
    for _ in range(10_000):
        s = update(s, params, correct=True)
    assert s.mastery < 1.0
    assert abs(s.log_odds) <= LOGIT_CAP
    after = update(s, params, correct=False)
    assert after.mastery < s.mastery
    assert after.wrong_streak == 1
    # and it keeps responding: a few wrong answers take it below the mastery threshold
    for _ in range(20):
        after = update(after, params, correct=False)
    assert after.mastery < 0.95


def test_long_wrong_run_stays_above_zero_and_recovers() -> None:
    s = initial(P)
    for _ in range(10_000):
        s = update(s, P, correct=False)
    assert s.mastery > 0.0
    assert update(s, P, correct=True).mastery > s.mastery


def test_extreme_parameters_stay_finite() -> None:
    params = BktParams(prior=1.0, learn=1.0, forget=0.0, guess=0.0, slip=0.0)
    s = update(initial(params), params, correct=False)
    assert 0.0 < s.mastery < 1.0
    assert 0.0 < predict(s, params) < 1.0


probability = st.floats(min_value=0.0, max_value=1.0)
bounded = st.floats(min_value=0.0, max_value=0.3)


@st.composite
def bkt_params(draw: st.DrawFn, forget: bool = True) -> BktParams:
    return BktParams(
        prior=draw(probability),
        learn=draw(st.floats(0.0, 0.75)),  # monotonicity needs learn + forget < 1
        forget=draw(st.floats(0.0, 0.2)) if forget else 0.0,
        guess=draw(bounded),
        slip=draw(bounded),
    )


@given(bkt_params(), st.floats(-30.0, 30.0), st.floats(0.01, 1.0))
def test_a_correct_answer_never_leaves_mastery_below_a_wrong_one(
    params: BktParams, log_odds: float, weight: float
) -> None:
    s = MasteryState(log_odds=log_odds)
    right = update(s, params, correct=True, weight=weight)
    wrong = update(s, params, correct=False, weight=weight)
    assert right.mastery >= wrong.mastery
    assert 0.0 < wrong.mastery <= right.mastery < 1.0


@given(bkt_params(forget=False), st.floats(-20.0, 20.0))
def test_without_forgetting_a_correct_answer_never_lowers_mastery(
    params: BktParams, log_odds: float
) -> None:
    s = MasteryState(log_odds=log_odds)
    assert update(s, params, correct=True).log_odds >= s.log_odds - 1e-9


@given(bkt_params(), st.floats(-20.0, 20.0), st.floats(-20.0, 20.0), st.booleans())
def test_more_mastery_before_means_more_after_and_a_higher_prediction(
    params: BktParams, a: float, b: float, correct: bool
) -> None:
    lo, hi = sorted((a, b))
    s_lo, s_hi = MasteryState(log_odds=lo), MasteryState(log_odds=hi)
    assert update(s_lo, params, correct).mastery <= update(s_hi, params, correct).mastery + 1e-12
    assert predict(s_lo, params) <= predict(s_hi, params) + 1e-12


@given(bkt_params(), st.lists(st.booleans(), max_size=60))
def test_mastery_and_predictions_stay_strictly_inside_the_unit_interval(
    params: BktParams, answers: list[bool]
) -> None:
    s = initial(params)
    for correct in answers:
        s = update(s, params, correct)
        assert 0.0 < s.mastery < 1.0
        assert s.last_prediction is not None
        assert 0.0 < s.last_prediction < 1.0


def test_elo_moves_toward_the_outcome_with_a_decaying_k_factor() -> None:
    model = EloModel(EloParams(difficulty=0.0, k=0.8, k_decay=0.5))
    s0 = model.initial()
    assert model.predict(s0) == pytest.approx(0.5)
    s1 = model.update(s0, correct=True)
    assert s1.ability == pytest.approx(0.8 * 0.5)
    assert s1.last_prediction == pytest.approx(0.5)
    assert model.predict(s1) > 0.5
    s2 = model.update(s1, correct=False)
    assert s2.ability < s1.ability
    expected = sigmoid(0.4)
    assert s2.ability == pytest.approx(0.4 - 0.8 / 1.5 * expected)
    half = model.update(s0, correct=True, weight=0.5)
    assert half.ability == pytest.approx(0.2)
    assert (s2.attempts, s2.correct, s2.wrong_streak) == (2, 1, 1)


def test_elo_ability_is_bounded_on_long_runs() -> None:
    model = EloModel(EloParams(k=5.0, k_decay=0.0))
    s = model.initial()
    for _ in range(10_000):
        s = model.update(s, correct=True)
    assert model.mastery(s) < 1.0
    assert model.update(s, correct=False).ability < s.ability


def _run(model: MasteryModel[MasteryState], answers: list[bool]) -> MasteryState:
    state = model.initial()
    for correct in answers:
        state = model.update(state, correct)
    return state


def _run_elo(model: MasteryModel[EloState], answers: list[bool]) -> EloState:
    state = model.initial()
    for correct in answers:
        state = model.update(state, correct)
    return state


def test_both_models_satisfy_the_protocol() -> None:
    bkt = _run(BktModel(P), [True, True, False])
    elo = _run_elo(EloModel(), [True, True, False])
    assert bkt.attempts == elo.attempts == 3


def _framework(model: str) -> Framework:
    return Framework.model_validate(
        {
            "tenant": "acme",
            "framework": "ds",
            "version": 1,
            "effective_from": "2026-01-01T00:00:00Z",
            "model": model,
            "competencies": [
                Competency(id="a", name="A", bkt=P).model_dump(),
                Competency(id="b", name="B").model_dump(),
            ],
        }
    )


def test_model_for_picks_the_framework_model_and_competency_parameters() -> None:
    bkt = _framework("bkt")
    assert model_for(bkt, "a") == BktModel(P)
    assert model_for(bkt, "b") == BktModel(DEFAULT_BKT)
    assert isinstance(model_for(_framework("elo"), "a"), EloModel)
    with pytest.raises(KeyError):
        model_for(bkt, "missing")
