"""The stall filter behind the wheel-spinning detector: from a learner's answers on one
competency, the probability that they have made ``run`` attempts in a row without knowing it (a
stall, the classic 10 of Beck & Gong, 2013) -- or will have at the next attempt. Pure arithmetic
on a short vector kept in the competency's detector state; no I/O.

The model is Bayesian Knowledge Tracing with forgetting, the progress service's own model, run
over a richer hidden state: whether the learner knows the skill, how many attempts in a row they
have made without knowing it (0 to ``run - 1``), and whether such a run already reached ``run``
(absorbing, so "stalled at some point" can be asked of the whole history). Per attempt:

1. forgetting since the previous attempt on the competency: a known skill is lost with
   probability ``1 - (1 - forget) ** days``;
2. the attempt: an attempt made while unknown adds one to the run; the ``run``-th completes a
   stall;
3. the answer, when it is evidence (see :func:`services.alerts.wheel.evidential`): right with
   ``1 - slip`` when known, ``guess`` when not; an answer that is not evidence (a guess too quick
   to have read the question, an answer shown by the last hint) leaves the probabilities as
   they are;
4. learning after the attempt: an unknown skill becomes known with ``learn`` (times
   ``not_evidence_learn_factor`` after an answer that was not evidence: clicking through teaches
   little).

Two kinds of learner are mixed, since one learn rate cannot say how long a run of wrong answers
should last: most learn at ``learn``; a share ``stuck_share`` barely learns this skill
(``learn * stuck_learn_factor``). The answers move the weight between the two, so a long run of
wrong answers raises the chance of a stall faster than one learn rate would.

Vector layout, per kind of learner (normal, then stuck): ``[stalled and known, stalled and
unknown, known, unknown with a run of 0, 1, ..., run - 1]``; the whole vector sums to 1.
"""

from __future__ import annotations

from typing import Final

from shared.framework import BktParams

KINDS: Final = 2  # normal learners, stuck learners
_HEAD: Final = 3  # stalled-known, stalled-unknown, known


def size(run: int) -> int:
    return KINDS * (_HEAD + run)


def fresh(bkt: BktParams, run: int, stuck_share: float) -> list[float]:
    """The vector before any attempt: known with ``bkt.prior``, no run yet."""
    vec: list[float] = []
    for weight in (1.0 - stuck_share, stuck_share):
        vec += [0.0, 0.0, weight * bkt.prior, weight * (1.0 - bkt.prior)] + [0.0] * (run - 1)
    return vec


def step(  # noqa: PLR0917 - one attempt's facts, called once per attempt
    vec: list[float],
    bkt: BktParams,
    learn_factors: tuple[float, float],
    gap_days: float,
    correct: bool,
    evidence: bool,
) -> list[float]:
    """The vector after one attempt (a new list). ``learn_factors``: the learn rate's factor for
    normal and for stuck learners (already times ``not_evidence_learn_factor`` when the answer
    is not evidence). ``gap_days``: days since the previous attempt on the competency (0 for
    the first). Answers impossible under the parameters (``slip`` 0 and a known skill answered
    wrong) leave the vector as it was."""
    width = len(vec) // KINDS
    keep = (1.0 - bkt.forget) ** gap_days if gap_days > 0 else 1.0
    if not evidence:
        known_p = unknown_p = 1.0
    elif correct:
        known_p, unknown_p = 1.0 - bkt.slip, bkt.guess
    else:
        known_p, unknown_p = bkt.slip, 1.0 - bkt.guess
    out: list[float] = []
    for kind, factor in enumerate(learn_factors):
        part = vec[kind * width : (kind + 1) * width]
        s_known, s_unknown, known = part[0], part[1], part[2]
        runs = part[_HEAD:]
        if keep < 1.0:
            lost, s_lost = known * (1.0 - keep), s_known * (1.0 - keep)
            known, s_known = known - lost, s_known - s_lost
            runs[0] += lost
            s_unknown += s_lost
        # the attempt (the last run completes a stall) and its answer
        s_unknown = (s_unknown + runs[-1]) * unknown_p
        runs = [0.0] + [p * unknown_p for p in runs[:-1]]
        s_known *= known_p
        known *= known_p
        # learning after the attempt
        rate = min(1.0, bkt.learn * factor)
        s_known += s_unknown * rate
        s_unknown *= 1.0 - rate
        known += sum(runs) * rate
        out += [s_known, s_unknown, known] + [p * (1.0 - rate) for p in runs]
    total = sum(out)
    if total <= 0.0:
        return list(vec)
    return [p / total for p in out]


def stalled(vec: list[float]) -> float:
    """P(a stall happened since the last :func:`reset`) given the answers so far."""
    width = len(vec) // KINDS
    return sum(vec[k * width] + vec[k * width + 1] for k in range(KINDS))


def stalled_next(vec: list[float]) -> float:
    """P(stalled by the next attempt): :func:`stalled` plus the chance that the learner, still
    not knowing the skill, makes the attempt that completes a run (forgetting before it is left
    out: it can only add to the figure)."""
    width = len(vec) // KINDS
    return stalled(vec) + sum(vec[(k + 1) * width - 1] for k in range(KINDS))


def stuck(vec: list[float]) -> float:
    """P(the learner is of the kind that barely learns this skill)."""
    width = len(vec) // KINDS
    return sum(vec[width:])


def reset(vec: list[float]) -> list[float]:
    """After the learner showed mastery (when the rule's ``reset_on_mastery`` says so): any
    stall is over, a new one needs a new run (the stalled states fold back into known and a
    run of 0)."""
    width = len(vec) // KINDS
    out = list(vec)
    for k in range(KINDS):
        base = k * width
        out[base + 2] += out[base]
        out[base + _HEAD] += out[base + 1]
        out[base] = out[base + 1] = 0.0
    return out
