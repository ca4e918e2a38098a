"""Mastery models: Bayesian Knowledge Tracing with forgetting (default) and an Elo alternative.

Pure functions over states never changed in place; constant work per event; no I/O.

BKT with forgetting (Khajah et al., 2016) is a two-state hidden Markov model per
(learner, competency): *learned* or *unlearned*. Each opportunity (an attempt mapped to the
competency) first emits an answer (correct with ``1 - slip`` when learned, ``guess`` when not),
then transitions: unlearned -> learned with ``learn``, learned -> unlearned with ``forget``.
Forgetting is **per opportunity**, not per elapsed time: the model (and ``fitting.py``, which
estimates it) knows only the order of attempts. Elapsed time is recorded in the state
(``last_event_at``) for stall rules, not used by the model.

Numerics: the state keeps the log-odds of being learned. Each update computes the pair
(P(learned), P(unlearned)) from it -- each side with full relative precision, so the small one is
never ``1 - 0.999...`` -- updates the pair, and renormalises back to log-odds, which is clamped
to ``[-LOGIT_CAP, LOGIT_CAP]``. So mastery stays strictly inside (0, 1): a run of 10,000 correct
answers never makes it exactly 1.0, and a wrong answer afterwards always lowers it.

Partial mapping (``weight`` w < 1): the update is a mixture -- with probability w the statement
was an opportunity for this competency (full evidence + transition), otherwise nothing happened::

    (L, U)_new = w * transition(posterior(L, U | answer)) + (1 - w) * (L, U)

Monotonicity (tested): a correct answer never leaves mastery below a wrong one, and more mastery
before means more after, whenever ``learn + forget < 1`` (any sensible parameter set).

Counters (attempts, streaks) count every attempt regardless of weight.

Learner ability (optional, per framework: ``AbilityParams``; off by default). Learners differ:
one who has beaten the model's predictions on earlier competencies is likely to start the next
one ahead and to learn it faster. The learner's *surprise* is the weighted sum of
``correct - predicted`` over every attempt so far (any competency) and its weight; the ability
is ``surprise / (weight + pseudo_count)`` (shrunk towards 0 while there is little evidence).
A competency the learner starts gets ``prior_weight * ability`` added to its prior's log-odds,
and each update uses the learn rate whose log-odds is moved by ``learn_weight * ability``
(individualised priors and learn rates, as in Pardos & Heffernan, 2010; Yudelson et al., 2013).
Two numbers per learner, constant work per event. ``fit --ability`` estimates the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, TypeVar

from shared.framework import AbilityParams, BktParams, Framework

MASTERY_THRESHOLD = 0.95
LOGIT_CAP = 20.0  # |log-odds| bound: mastery in [2.1e-9, 1 - 2.1e-9]
_EPS = 1e-9  # parameters are used clipped to [_EPS, 1 - _EPS]
DEFAULT_BKT = BktParams()  # the framework defaults: BKT with forgetting


def _clip(p: float) -> float:
    return min(max(p, _EPS), 1.0 - _EPS)


def logit(p: float) -> float:
    p = _clip(p)
    return math.log(p) - math.log1p(-p)


def sigmoid(x: float) -> float:
    """Logistic function without overflow for any finite ``x``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _cap(x: float) -> float:
    return min(max(x, -LOGIT_CAP), LOGIT_CAP)


# The states are never changed in place (every function here returns a new one), but they are
# not frozen: building a frozen dataclass costs several times more, and the worker builds one
# per event and competency.
@dataclass(slots=True)
class _Tally:
    """Bookkeeping shared by every model's state."""

    attempts: int = 0
    correct: int = 0
    correct_streak: int = 0
    wrong_streak: int = 0
    last_event_at: datetime | None = None
    time_on_task_s: float = 0.0
    last_prediction: float | None = None  # P(correct) predicted before the last attempt


@dataclass(slots=True)
class MasteryState(_Tally):
    """BKT state of one (learner, competency); ``log_odds`` is the log-odds of *learned*."""

    log_odds: float = 0.0

    @property
    def mastery(self) -> float:
        """P(learned) before the next opportunity; strictly between 0 and 1."""
        return sigmoid(self.log_odds)


@dataclass(slots=True)
class EloState(_Tally):
    """Elo state of one (learner, competency): the learner's ability on the logit scale."""

    ability: float = 0.0


S = TypeVar("S", MasteryState, EloState)


def _tally(state: S, correct: bool, prediction: float, at: datetime | None, dur: float) -> S:
    return replace(
        state,
        attempts=state.attempts + 1,
        correct=state.correct + (1 if correct else 0),
        correct_streak=state.correct_streak + 1 if correct else 0,
        wrong_streak=0 if correct else state.wrong_streak + 1,
        last_event_at=_later(state.last_event_at, at),
        time_on_task_s=state.time_on_task_s + max(dur, 0.0),
        last_prediction=prediction,
    )


def _later(old: datetime | None, new: datetime | None) -> datetime | None:
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)


def record_activity(state: S, at: datetime | None, duration_s: float = 0.0) -> S:
    """Non-attempt evidence (completion, hint, video...): recency and time on task only."""
    return replace(
        state,
        last_event_at=_later(state.last_event_at, at),
        time_on_task_s=state.time_on_task_s + max(duration_s, 0.0),
    )


# --- BKT -------------------------------------------------------------------------------------


def initial(params: BktParams = DEFAULT_BKT, prior_shift: float = 0.0) -> MasteryState:
    """The state before any evidence; ``prior_shift`` is added to the prior's log-odds."""
    return MasteryState(log_odds=_cap(logit(params.prior) + prior_shift))


def learner_ability(surprise: float, weight: float, params: AbilityParams) -> float:
    """The learner's ability (log-odds scale units per unit of surprise; see the module)."""
    return surprise / (weight + params.pseudo_count)


def add_surprise(
    surprise: float, weight: float, correct: bool, prediction: float, evidence_weight: float = 1.0
) -> tuple[float, float]:
    """The learner's (surprise, weight) once an attempt predicted ``prediction`` is answered."""
    return (
        surprise + evidence_weight * ((1.0 if correct else 0.0) - prediction),
        weight + evidence_weight,
    )


#: (params, (guess, slip, learn, forget) clipped) by ``id`` of the (immutable) parameter set,
#: which each entry holds: a framework has a few; the worker uses them per event
_CLIPPED: dict[int, tuple[BktParams, tuple[float, float, float, float]]] = {}


def _clipped(params: BktParams) -> tuple[float, float, float, float]:
    hit = _CLIPPED.get(id(params))
    if hit is None or hit[0] is not params:
        if len(_CLIPPED) >= 10_000:
            _CLIPPED.clear()
        values = (
            _clip(params.guess),
            _clip(params.slip),
            _clip(params.learn),
            _clip(params.forget),
        )
        hit = _CLIPPED[id(params)] = (params, values)
    return hit[1]


def predict(state: MasteryState, params: BktParams = DEFAULT_BKT) -> float:
    """P(correct) at the next opportunity, before seeing its answer."""
    guess, slip, _, _ = _clipped(params)
    learned = sigmoid(state.log_odds)
    return learned * (1.0 - slip) + (1.0 - learned) * guess


def step_log_odds(
    log_odds: float,
    params: BktParams,
    correct: bool,
    weight: float = 1.0,
    learn_shift: float = 0.0,
) -> float:
    """One BKT opportunity on the log-odds of *learned*: evidence, then transition (see module);
    ``learn_shift`` is added to the learn rate's log-odds."""
    guess, slip, learn, forget = _clipped(params)
    if learn_shift:
        learn = _clip(sigmoid(logit(learn) + learn_shift))
    # the pair, each side computed directly (no 1 - x cancellation)
    lrn, unl = sigmoid(log_odds), sigmoid(-log_odds)
    e_lrn, e_unl = (1.0 - slip, guess) if correct else (slip, 1.0 - guess)
    post_l, post_u = lrn * e_lrn, unl * e_unl
    total = post_l + post_u
    post_l, post_u = post_l / total, post_u / total
    new_l = post_l * (1.0 - forget) + post_u * learn
    new_u = post_u * (1.0 - learn) + post_l * forget
    if weight < 1.0:
        new_l = weight * new_l + (1.0 - weight) * lrn
        new_u = weight * new_u + (1.0 - weight) * unl
    return _cap(math.log(new_l) - math.log(new_u))


def update(
    state: MasteryState,
    params: BktParams = DEFAULT_BKT,
    correct: bool = True,
    weight: float = 1.0,
    *,
    at: datetime | None = None,
    duration_s: float = 0.0,
    learn_shift: float = 0.0,
) -> MasteryState:
    """The state after one attempt; records the prediction made before seeing the answer."""
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight must be in (0, 1], not {weight}")
    prediction = predict(state, params)
    # built directly (the values of ``replace(_tally(...), log_odds=...)``): ``replace`` is
    # slow and this runs once per attempt in the worker
    return MasteryState(
        attempts=state.attempts + 1,
        correct=state.correct + (1 if correct else 0),
        correct_streak=state.correct_streak + 1 if correct else 0,
        wrong_streak=0 if correct else state.wrong_streak + 1,
        last_event_at=_later(state.last_event_at, at),
        time_on_task_s=state.time_on_task_s + max(duration_s, 0.0),
        last_prediction=prediction,
        log_odds=step_log_odds(state.log_odds, params, correct, weight, learn_shift),
    )


# --- Elo -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EloParams:
    """Elo for one competency: P(correct) = sigmoid(ability - difficulty).

    ``difficulty`` is the competency's typical item difficulty (logit scale; fit it as the logit
    of the share of wrong answers). The K-factor decays with the learner's attempts:
    ``k / (1 + k_decay * attempts)`` -- big moves for newcomers, stable ratings later.
    Mastery is P(correct) on an item ``margin`` logits harder than typical.
    """

    difficulty: float = 0.0
    k: float = 0.8
    k_decay: float = 0.05
    margin: float = 0.0
    initial_ability: float = 0.0


def elo_predict(state: EloState, params: EloParams) -> float:
    return sigmoid(state.ability - params.difficulty)


def elo_update(
    state: EloState,
    params: EloParams,
    correct: bool,
    weight: float = 1.0,
    *,
    at: datetime | None = None,
    duration_s: float = 0.0,
) -> EloState:
    """Ability moves by ``weight * K(attempts) * (outcome - expected)``; capped like BKT."""
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight must be in (0, 1], not {weight}")
    expected = elo_predict(state, params)
    k = params.k / (1.0 + params.k_decay * state.attempts)
    ability = _cap(state.ability + weight * k * ((1.0 if correct else 0.0) - expected))
    return replace(_tally(state, correct, expected, at, duration_s), ability=ability)


# --- one interface for the service -------------------------------------------------------------


class MasteryModel(Protocol[S]):
    """What the progress worker needs from a model of one competency."""

    def initial(self, ability: float = 0.0) -> S: ...

    def predict(self, state: S) -> float: ...

    def update(
        self,
        state: S,
        correct: bool,
        weight: float = 1.0,
        *,
        at: datetime | None = None,
        duration_s: float = 0.0,
        ability: float = 0.0,
    ) -> S: ...

    def mastery(self, state: S) -> float: ...


@dataclass(frozen=True, slots=True)
class BktModel:
    """``ability`` (the learner's, from :func:`learner_ability`) moves the prior and learn rate
    by the framework's ``AbilityParams`` weights; without them it is ignored."""

    params: BktParams = DEFAULT_BKT
    threshold: float = MASTERY_THRESHOLD
    ability_params: AbilityParams | None = None

    def initial(self, ability: float = 0.0) -> MasteryState:
        a = self.ability_params
        return initial(self.params, a.prior_weight * ability if a and ability else 0.0)

    def predict(self, state: MasteryState) -> float:
        return predict(state, self.params)

    def update(
        self,
        state: MasteryState,
        correct: bool,
        weight: float = 1.0,
        *,
        at: datetime | None = None,
        duration_s: float = 0.0,
        ability: float = 0.0,
    ) -> MasteryState:
        a = self.ability_params
        shift = a.learn_weight * ability if a and ability else 0.0
        return update(
            state, self.params, correct, weight, at=at, duration_s=duration_s, learn_shift=shift
        )

    def mastery(self, state: MasteryState) -> float:
        return state.mastery


@dataclass(frozen=True, slots=True)
class EloModel:
    params: EloParams = EloParams()
    threshold: float = MASTERY_THRESHOLD

    def initial(self, ability: float = 0.0) -> EloState:  # noqa: ARG002 - Elo is ability
        return EloState(ability=self.params.initial_ability)

    def predict(self, state: EloState) -> float:
        return elo_predict(state, self.params)

    def update(
        self,
        state: EloState,
        correct: bool,
        weight: float = 1.0,
        *,
        at: datetime | None = None,
        duration_s: float = 0.0,
        ability: float = 0.0,  # noqa: ARG002 - the rating is the learner's own ability already
    ) -> EloState:
        return elo_update(state, self.params, correct, weight, at=at, duration_s=duration_s)

    def mastery(self, state: EloState) -> float:
        return sigmoid(state.ability - self.params.difficulty - self.params.margin)


def model_for(framework: Framework, competency: str) -> BktModel | EloModel:
    """The model ``framework.model`` names, with the competency's own BKT parameters if any."""
    if framework.model == "elo":
        return EloModel()
    for c in framework.competencies:
        if c.id == competency:
            return BktModel(c.bkt or DEFAULT_BKT, ability_params=framework.ability)
    raise KeyError(f"competency {competency!r} is not in framework {framework.framework}")
