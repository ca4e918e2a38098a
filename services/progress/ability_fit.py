"""Estimating the learner-ability weights of BKT (``AbilityParams``) from history.

Run after the per-competency fit (``fitting.py``): with each competency's ``BktParams`` fixed,
the three numbers (prior weight, learn weight, pseudo-count) are chosen to maximise the
log-likelihood of every answer predicted before it is seen, each learner's history streamed in
time order across competencies exactly as the worker does (``mastery.py``: the learner's
surprise, the ability it gives, the shifted prior of a competency started and the shifted learn
rate of each update). The search is coordinate-wise golden-section (the pseudo-count on a log
scale), a few rounds; the likelihood is smooth in each weight. The weights stay 0 when they do
not help (a weight is kept only if it raises the likelihood).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from services.progress.mastery import logit, sigmoid
from shared.framework import AbilityParams, BktParams

Record = tuple[str, str, bool]  # competency, learner, correct (``fitting.Record``)

_EPS = 1e-9
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

#: per learner, in time order: (competency index, correct)
_Histories = list[list[tuple[int, bool]]]
#: per competency index: (prior log-odds, learn log-odds, forget, guess, slip)
_Table = list[tuple[float, float, float, float, float]]


def prepare(
    records: Iterable[Record], params: Mapping[str, BktParams], default: BktParams
) -> tuple[_Histories, _Table]:
    """Each learner's answers in time order, by competency index, and the parameter table."""
    index: dict[str, int] = {}
    table: _Table = []
    by_learner: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for competency, learner, correct in records:
        i = index.get(competency)
        if i is None:
            p = params.get(competency, default)
            i = index[competency] = len(table)
            table.append((logit(p.prior), logit(p.learn), p.forget, p.guess, p.slip))
        by_learner[learner].append((i, bool(correct)))
    return list(by_learner.values()), table


def log_likelihood(histories: _Histories, table: _Table, ability: AbilityParams) -> float:
    """The log-likelihood of every answer, each predicted before it is seen."""
    wp, wl, n0 = ability.prior_weight, ability.learn_weight, ability.pseudo_count
    total = 0.0
    for history in histories:
        learned: dict[int, float] = {}
        surprise = weight = 0.0
        for i, correct in history:
            prior, learn, forget, guess, slip = table[i]
            z = surprise / (weight + n0)
            pl = learned.get(i)
            if pl is None:
                pl = sigmoid(prior + wp * z)
            pc = pl * (1.0 - slip) + (1.0 - pl) * guess
            pc = min(max(pc, _EPS), 1.0 - _EPS)
            if correct:
                total += math.log(pc)
                post = pl * (1.0 - slip) / pc
                surprise += 1.0 - pc
            else:
                total += math.log1p(-pc)
                post = pl * slip / (1.0 - pc)
                surprise -= pc
            weight += 1.0
            lr = sigmoid(learn + wl * z)
            learned[i] = post * (1.0 - forget) + (1.0 - post) * lr
    return total


def _golden(f: Callable[[float], float], lo: float, hi: float, iterations: int) -> float:
    """The maximiser of a unimodal ``f`` on [lo, hi] (to about ``0.618**iterations``)."""
    a, b = lo, hi
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def fit_ability(
    records: Iterable[Record],
    params: Mapping[str, BktParams],
    *,
    default: BktParams | None = None,
    rounds: int = 2,
    iterations: int = 12,
    max_weight: float = 48.0,
) -> tuple[AbilityParams, float, float]:
    """The weights, and the log-likelihood without and with them (``records`` in time order,
    ``params`` per competency; a competency without is predicted with ``default``)."""
    histories, table = prepare(records, params, default or BktParams())

    def ll(x: list[float]) -> float:
        return log_likelihood(histories, table, _ability(x))

    base = ll([0.0, 0.0, 0.0])
    # prior weight, learn weight, log pseudo-count: a start, then each coordinate in turn
    best = [8.0, 4.0, math.log(10.0)]
    bounds = ((0.0, max_weight), (0.0, max_weight), (0.0, math.log(1000.0)))
    for _ in range(rounds):
        for k, (lo, hi) in enumerate(bounds):

            def along(v: float, k: int = k) -> float:
                return ll([*best[:k], v, *best[k + 1 :]])

            best[k] = _golden(along, lo, hi, iterations)
    fitted = ll(best)
    if fitted <= base:
        return AbilityParams(), base, base
    return _ability(best), base, fitted


def _ability(x: list[float]) -> AbilityParams:
    return AbilityParams(prior_weight=x[0], learn_weight=x[1], pseudo_count=math.exp(x[2]))
