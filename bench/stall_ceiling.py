"""The Bayes ceiling of wheel-spinning detection on the classroom simulator.

A true stall (``tools/simulator/truth.py``) is :data:`STALL_ATTEMPTS` consecutive attempts on a
competency made while it was truly unknown. Whether that happened is hidden: even a filter that
knows everything the simulator draws from -- each learner's TRUE per-competency parameters and
which attempts were gamed -- can only compute a probability from the answers. That filter is the
best any detector can do on these statements, so its precision and recall bound every detector's.

:func:`stall_filter` is that filter: the exact posterior over (stalled already?, known?, length of
the current run of unknown attempts) along one pair's attempts, by the simulator's own rules
(``tools/simulator/learners.py``): before an attempt a known competency is forgotten with
``1 - (1 - forget) ** days`` since the previous attempt; the answer is correct with ``1 - slip``
when known and ``guess`` when not, or, on a gamed attempt, with :data:`FAST_GUESS_CORRECT`
(``"guess"``) or :data:`HINT_CORRECT` (``"hint"``) whatever the knowledge; then an unknown
competency is learnt with ``learn`` (times :data:`GAMED_LEARN_FACTOR` when gamed).

It ignores the live classes: their small learning step (``learn`` x ``SESSION_LEARN_FACTOR``)
between two attempts is not modelled (forgetting is: it compounds over the whole gap between two
attempts whether or not a class cuts it). So it is an (almost exact) ceiling, not a detector:
no deployed detector knows the hidden parameters. The alerts service's own stall filter
(``services/alerts/stall.py``) does the same arithmetic with the parameters a deployment has; it
is not reused here on purpose, so that the yardstick does not move with the detector it judges
(each is checked against a brute-force sum over hidden paths in its tests).

Figures, over learner x competency pairs with at least one attempt:

* :func:`calibration`: the sum of the final posteriors against the number of true stalls;
* hindsight (:func:`sweep`, :func:`best_precision`, :func:`best_recall`): pairs whose posterior
  after every answer on the pair reaches a threshold, the best threshold picked on the cohort
  itself (a bound: on a small cohort that choice flatters it a little);
* online (:func:`flag_online`): a pair flagged at the first attempt where P(stalled by now) >=
  :data:`ONLINE_LATE` or P(stalled by the next attempt, should there be one) >=
  :data:`ONLINE_EARLY` -- one fixed pair of thresholds, chosen on other cohorts than the reported
  ones (see there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple, TypeVar

from tools.simulator.learners import (
    FAST_GUESS_CORRECT,
    GAMED_LEARN_FACTOR,
    HINT_CORRECT,
    Params,
)
from tools.simulator.truth import STALL_ATTEMPTS

K = TypeVar("K")

# The online variant's thresholds: fixed, NOT tuned on the cohorts the bench reports (seed 2027
# in BENCHMARKS.md, 7 by default). Chosen on seeds 101 and 102 (400 learners, 30 days): of the
# grid early 0.4..0.8 x late 0.2..0.6 (steps of 0.1), the pair with the highest recall at
# precision >= 0.75 on both (101: P 0.769 R 0.947; 102: P 0.750 R 0.957).
ONLINE_EARLY: Final = 0.6
ONLINE_LATE: Final = 0.4


class Attempt(NamedTuple):
    at: datetime
    correct: bool
    gamed: str | None  # None | "guess" | "hint" (truth ``state`` records)


class Belief(NamedTuple):
    """After one attempt, given every answer up to it."""

    stalled: float  # P(stalled at or before this attempt)
    next: float  # P(stalled at or before the next attempt, should there be one)


def stall_filter(attempts: Iterable[Attempt], params: Params) -> list[Belief]:
    """The posterior after each attempt of one learner on one competency (attempts in order).

    Raises ``ValueError`` on an answer the parameters make impossible (e.g. a correct answer
    when ``guess`` is 0 and the competency cannot be known).
    """
    stall = STALL_ATTEMPTS
    # Not stalled yet: known, or unknown with a run of r (0..stall-1) unknown attempts.
    known = params.prior
    run = [1.0 - params.prior] + [0.0] * (stall - 1)
    # Stalled already: the run no longer matters.
    s_known = s_unknown = 0.0
    last: datetime | None = None
    out: list[Belief] = []
    for a in attempts:
        if last is not None and a.at > last:
            keep = (1.0 - params.forget) ** ((a.at - last).total_seconds() / 86_400)
            run[0] += known * (1.0 - keep)
            known *= keep
            s_unknown += s_known * (1.0 - keep)
            s_known *= keep
        last = a.at
        # The attempt: made unknown, it extends the run; the stall-th such attempt is the stall.
        s_unknown += run[-1]
        run = [0.0, *run[:-1]]
        # The answer.
        if a.gamed == "guess":
            p_known = p_unknown = FAST_GUESS_CORRECT
        elif a.gamed == "hint":
            p_known = p_unknown = HINT_CORRECT
        else:
            p_known, p_unknown = 1.0 - params.slip, params.guess
        if not a.correct:
            p_known, p_unknown = 1.0 - p_known, 1.0 - p_unknown
        known *= p_known
        s_known *= p_known
        s_unknown *= p_unknown
        run = [x * p_unknown for x in run]
        total = known + s_known + s_unknown + math.fsum(run)
        if total <= 0.0:
            raise ValueError(f"answer {a} impossible under {params}")
        known, s_known, s_unknown = known / total, s_known / total, s_unknown / total
        run = [x / total for x in run]
        # Learning.
        rate = params.learn * (GAMED_LEARN_FACTOR if a.gamed else 1.0)
        known += math.fsum(run) * rate
        run = [x * (1.0 - rate) for x in run]
        s_known += s_unknown * rate
        s_unknown *= 1.0 - rate
        stalled = min(1.0, s_known + s_unknown)
        out.append(Belief(stalled, min(1.0, stalled + run[-1])))
    return out


def final(beliefs: Sequence[Belief]) -> float:
    """P(stalled at some point | every answer on the pair): 0 for a pair never attempted."""
    return beliefs[-1].stalled if beliefs else 0.0


@dataclass(frozen=True)
class Point:
    """Pairs whose score is >= ``threshold``."""

    threshold: float
    flagged: int
    hits: int
    positives: int

    @property
    def precision(self) -> float:
        return self.hits / self.flagged if self.flagged else math.nan

    @property
    def recall(self) -> float:
        return self.hits / self.positives if self.positives else math.nan


def sweep(scores: Mapping[K, float], positives: set[K]) -> list[Point]:
    """Precision/recall of ``score >= threshold`` for every distinct score, highest first."""
    ranked = sorted(((s, k in positives) for k, s in scores.items()), reverse=True)
    n_pos = len(positives)
    points: list[Point] = []
    hits = 0
    for i, (score, positive) in enumerate(ranked):
        hits += positive
        if i + 1 == len(ranked) or ranked[i + 1][0] < score:
            points.append(Point(score, i + 1, hits, n_pos))
    return points


def best_precision(points: Iterable[Point], min_recall: float) -> Point | None:
    """The highest precision reached with recall >= ``min_recall`` (ties: the higher recall)."""
    ok = [p for p in points if p.recall >= min_recall]
    return max(ok, key=lambda p: (p.precision, p.recall)) if ok else None


def best_recall(points: Iterable[Point], min_precision: float) -> Point | None:
    """The highest recall reached with precision >= ``min_precision`` (ties: the higher
    precision)."""
    ok = [p for p in points if p.flagged and p.precision >= min_precision]
    return max(ok, key=lambda p: (p.recall, p.precision)) if ok else None


def calibration(scores: Mapping[K, float], positives: set[K]) -> dict[str, float]:
    """Expected against actual number of stalls, with the standard deviation the actual number
    would have if the posteriors were right (pairs independent): a calibrated filter lands
    within a few of those."""
    return {
        "expected_stalls": math.fsum(scores.values()),
        "expected_stalls_sd": math.sqrt(math.fsum(p * (1.0 - p) for p in scores.values())),
        "true_stalls": len(positives),
    }


def flag_online(
    attempts: Sequence[Attempt],
    beliefs: Sequence[Belief],
    early: float = ONLINE_EARLY,
    late: float = ONLINE_LATE,
) -> tuple[datetime, int] | None:
    """(time, attempt number) of the first attempt where P(stalled by now) >= ``late`` or
    P(stalled by the next attempt) >= ``early``; ``None`` if none."""
    for n, (a, b) in enumerate(zip(attempts, beliefs, strict=True), start=1):
        if b.stalled >= late or b.next >= early:
            return a.at, n
    return None


def point_figures(point: Point | None) -> dict[str, float]:
    """A hindsight point as the bench's detection figures (no delay: it looks at every answer)."""
    if point is None:
        return {"threshold": math.nan, "flagged": 0, "precision": math.nan, "recall": math.nan}
    return {
        "threshold": point.threshold,
        "flagged": point.flagged,
        "precision": point.precision,
        "recall": point.recall,
    }


@dataclass(frozen=True)
class Ceiling:
    final: dict[tuple[str, str], float]  # per pair: P(stalled at some point | every answer)
    online: dict[tuple[str, str], tuple[datetime, int]]  # per flagged pair: (time, attempt no.)


def ceiling(
    attempts: Mapping[tuple[str, str], Sequence[Attempt]],
    params: Mapping[str, Mapping[str, Params]],
) -> Ceiling:
    """The filter on every (learner, competency) pair, with the learner's true parameters."""
    out = Ceiling({}, {})
    for pair, seq in attempts.items():
        beliefs = stall_filter(seq, params[pair[0]][pair[1]])
        out.final[pair] = final(beliefs)
        flag = flag_online(seq, beliefs)
        if flag is not None:
            out.online[pair] = flag
    return out


def hindsight(scores: Mapping[K, float], positives: set[K]) -> dict[str, object]:
    """Calibration and the best thresholds of the final posterior for the issue's targets."""
    points = sweep(scores, positives)
    return {
        **calibration(scores, positives),
        "best_precision_at_recall_95": point_figures(best_precision(points, 0.95)),
        "best_recall_at_precision_75": point_figures(best_recall(points, 0.75)),
    }
