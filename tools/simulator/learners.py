"""Learners: archetypes, per-learner parameters and the hidden knowledge that evolves by BKT.

Hidden state, per (learner, competency): a boolean ``known``. The rules (all drawn from the
learner's own random stream, so a seed fixes everything):

* start: ``known ~ Bernoulli(prior)``;
* forgetting: before an opportunity, a known competency is lost with probability
  ``1 - (1 - forget) ** days_since_last_opportunity``;
* answer: correct with ``1 - slip`` when known, ``guess`` when not; a *gamed* attempt ignores
  knowledge (fast guess: 1 in 4; bottom-out hint: 0.9);
* learning: after the opportunity, an unknown competency becomes known with ``learn``
  (a gamed attempt learns a tenth of that, a live class a third).

Alongside, :class:`HiddenState` keeps ``p_known``: the ideal BKT filter run with the learner's
true parameters on everything the learner did (the best estimate any model could reach).

Archetypes (parameters are multiplied on top of the competency's population ``bkt``):

* ``typical``  — learn x lognormal(0, 0.3).
* ``fast``     — learn x2.5, higher prior, lower slip, shorter answers, attends more.
* ``wheel-spinner`` — on 1-2 of the programme's harder competencies learn is 0.005 and the prior
  0.02 (barely learns them); they keep practising them.
* ``drop-out`` — stops at a drop day in 35-85 % of the run; attendance fades over the 10 days
  before it, study activity over the last 4.
* ``gamer``   — games 50-85 % of items (very short answers, often after requesting every
  hint) and answers the others hastily too.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final, Literal

from shared.framework import BktParams
from tools.simulator.academy import CompetencySpec

Archetype = Literal["typical", "fast", "wheel-spinner", "drop-out", "gamer"]
ARCHETYPES: Final[tuple[Archetype, ...]] = ("typical", "fast", "wheel-spinner", "drop-out", "gamer")
DEFAULT_MIX: Final[dict[Archetype, float]] = {
    "typical": 0.5,
    "fast": 0.15,
    "wheel-spinner": 0.15,
    "drop-out": 0.1,
    "gamer": 0.1,
}
GAMED_LEARN_FACTOR: Final = 0.1
SESSION_LEARN_FACTOR: Final = 1 / 3
HINT_CORRECT: Final = 0.9
FAST_GUESS_CORRECT: Final = 0.25
ATTENDANCE_FADE_DAYS: Final = 10
ACTIVITY_FADE_DAYS: Final = 4


def archetype_counts(n: int, mix: dict[Archetype, float]) -> list[Archetype]:
    """Exactly ``n`` archetypes in the proportions of ``mix`` (largest remainder rounding)."""
    total = sum(mix.values())
    shares = {a: n * w / total for a, w in mix.items()}
    counts = {a: math.floor(s) for a, s in shares.items()}
    by_remainder = sorted(mix, key=lambda a: (-(shares[a] - counts[a]), ARCHETYPES.index(a)))
    for a in by_remainder[: n - sum(counts.values())]:
        counts[a] += 1
    return [a for a in ARCHETYPES if a in counts for _ in range(counts[a])]


@dataclass(frozen=True)
class Params:
    prior: float
    learn: float
    forget: float
    guess: float
    slip: float


@dataclass
class Profile:
    """Who a learner is: archetype, behaviour and true per-competency parameters."""

    archetype: Archetype
    params: dict[str, Params]
    active_prob: float
    attend_prob: float
    pace: float  # median seconds per answered item
    preferred_hour: float
    gaming_rate: float = 0.0
    hint_rate: float = 0.08
    stuck: tuple[str, ...] = ()
    drop_day: float | None = None  # days since the start

    def attendance_factor(self, day: float) -> float:
        return self._fade(day, ATTENDANCE_FADE_DAYS)

    def activity_factor(self, day: float) -> float:
        return self._fade(day, ACTIVITY_FADE_DAYS)

    def _fade(self, day: float, span: float) -> float:
        if self.drop_day is None:
            return 1.0
        if day >= self.drop_day:
            return 0.0
        begin = self.drop_day - span
        if day <= begin:
            return 1.0
        return 1.0 - 0.85 * (day - begin) / span


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


def make_profile(
    rng: random.Random, archetype: Archetype, comps: list[CompetencySpec], days: int
) -> Profile:
    ability = rng.lognormvariate(0.0, 0.3)
    learn_x, prior_x, slip_x = ability, 1.0, 1.0
    active, attend, pace = 0.6, 0.85, rng.uniform(30.0, 55.0)
    stuck: tuple[str, ...] = ()
    drop_day: float | None = None
    gaming = 0.0
    if archetype == "fast":
        learn_x, prior_x, slip_x = 2.5 * ability, 1.8, 0.6
        active, attend, pace = 0.65, 0.92, rng.uniform(15.0, 30.0)
    elif archetype == "wheel-spinner":
        hard = sorted(comps, key=lambda c: (c.bkt.learn, c.id))[:3]
        stuck = tuple(sorted(c.id for c in rng.sample(hard, rng.choice((1, 2)))))
        learn_x, active, pace = 0.8 * ability, 0.65, rng.uniform(45.0, 80.0)
    elif archetype == "drop-out":
        drop_day = round(rng.uniform(0.35, 0.85) * days, 3)
        learn_x, attend = 0.9 * ability, 0.8
    elif archetype == "gamer":
        gaming = rng.uniform(0.5, 0.85)
        active, attend, pace = 0.55, 0.7, rng.uniform(12.0, 25.0)
    params = {}
    for c in comps:
        b: BktParams = c.bkt
        if c.id in stuck:
            params[c.id] = Params(0.02, 0.005, b.forget, b.guess, b.slip)
            continue
        params[c.id] = Params(
            prior=round(_clip(b.prior * prior_x * rng.uniform(0.7, 1.3), 0.0, 0.9), 4),
            learn=round(_clip(b.learn * learn_x, 0.01, 0.8), 4),
            forget=round(_clip(b.forget * rng.uniform(0.5, 1.5), 0.0, 0.2), 4),
            guess=b.guess,
            slip=round(_clip(b.slip * slip_x * rng.uniform(0.8, 1.2), 0.01, 0.4), 4),
        )
    return Profile(
        archetype=archetype,
        params=params,
        active_prob=active,
        attend_prob=attend,
        pace=round(pace, 2),
        preferred_hour=rng.uniform(8.0, 20.0),
        gaming_rate=round(gaming, 3),
        hint_rate=0.5 if archetype == "wheel-spinner" else 0.08,
        stuck=stuck,
        drop_day=drop_day,
    )


@dataclass
class HiddenState:
    """True knowledge (``known``) and the oracle BKT posterior (``p_known``) per competency."""

    params: dict[str, Params]
    known: dict[str, bool] = field(default_factory=dict)
    p_known: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)  # day of the last opportunity

    @classmethod
    def start(cls, rng: random.Random, params: dict[str, Params]) -> HiddenState:
        state = cls(params)
        for cid, p in params.items():
            state.known[cid] = rng.random() < p.prior
            state.p_known[cid] = p.prior
        return state

    def forget(self, rng: random.Random, cid: str, day: float) -> None:
        """Apply forgetting for the time since the last opportunity on ``cid``."""
        last = self.last_seen.get(cid)
        self.last_seen[cid] = day
        if last is None or day <= last:
            return
        keep = (1.0 - self.params[cid].forget) ** (day - last)
        self.p_known[cid] *= keep
        if self.known[cid] and rng.random() >= keep:
            self.known[cid] = False

    def answer(self, rng: random.Random, cid: str, gamed: str | None) -> bool:
        """Draw the observed correctness of one attempt, then learn; returns correctness.

        ``gamed`` is ``None`` (a real attempt), ``"guess"`` or ``"hint"``.
        """
        p = self.params[cid]
        if gamed == "guess":
            correct = rng.random() < FAST_GUESS_CORRECT
        elif gamed == "hint":
            correct = rng.random() < HINT_CORRECT
        else:
            correct = rng.random() < ((1.0 - p.slip) if self.known[cid] else p.guess)
            prior = self.p_known[cid]
            if correct:
                num = prior * (1.0 - p.slip)
                den = num + (1.0 - prior) * p.guess
            else:
                num = prior * p.slip
                den = num + (1.0 - prior) * (1.0 - p.guess)
            self.p_known[cid] = num / den if den > 0 else prior
        self.learn(rng, cid, GAMED_LEARN_FACTOR if gamed else 1.0)
        return correct

    def learn(self, rng: random.Random, cid: str, factor: float) -> None:
        rate = self.params[cid].learn * factor
        post = self.p_known[cid]
        self.p_known[cid] = post + (1.0 - post) * rate
        if not self.known[cid] and rng.random() < rate:
            self.known[cid] = True
