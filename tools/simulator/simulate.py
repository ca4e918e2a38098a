"""The simulation: learners live through the academy's days; their statements are merged in
event-time order with the ground truth beside them.

A learner's day: the live classes of their cohort (attended with the archetype's probability,
fading for drop-outs), and with the archetype's activity probability (less at weekends) one or
two study sessions at around their preferred hour. A study session is a practice set of six items
of the current competency (``attempted`` module, per item optional ``asked`` hints then
``answered``, ``completed`` and ``progressed`` module); a set scored at least 80 % unlocks the
three-item assessment, passing it (2 of 3) moves the learner to the next competency, as do
:data:`MAX_SETS` sets without passing. After the last competency the learner reviews.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from tools.simulator.academy import (
    ASSESSMENT_ITEMS,
    CHOICES,
    COHORT_SIZE,
    PRACTICE_ITEMS,
    Academy,
    CohortSpec,
    CompetencySpec,
    ProgrammeSpec,
    Session,
    Tenant,
    add_cohort,
    build_academy,
    learner_ref,
    seeded,
)
from tools.simulator.learners import (
    ACTIVITY_FADE_DAYS,
    ATTENDANCE_FADE_DAYS,
    DEFAULT_MIX,
    SESSION_LEARN_FACTOR,
    Archetype,
    HiddenState,
    Profile,
    archetype_counts,
    make_profile,
)
from tools.simulator.statements import StatementFactory, correct_choice, iso_ms, new_uuid
from tools.simulator.truth import StallTracker, state_record

Json = dict[str, Any]

DAY_MS: Final = 86_400_000
DEFAULT_START: Final = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday
SET_SIZE: Final = 6
PASS_SET: Final = 0.8
MAX_SETS: Final = 10


@dataclass(frozen=True)
class Config:
    seed: int = 7
    learners: int = 200
    days: int = 30
    tenants: int = 2
    start: datetime = DEFAULT_START
    mix: dict[Archetype, float] = field(default_factory=lambda: dict(DEFAULT_MIX))


@dataclass
class Event:
    """One statement (with the truth records it produced) in the merged stream."""

    ms: int
    learner: int
    seq: int
    tenant: str
    learner_ref: str
    statement: Json
    truth: list[Json]


@dataclass
class Simulation:
    academy: Academy
    events: list[Event]  # statements in event-time order
    learners: list[Json]  # "learner" truth records
    extra_truth: list[tuple[int, Json]]  # stall and dropout records with their time (ms)


class _Learner:
    """The day-by-day behaviour of one learner."""

    def __init__(
        self,
        *,
        cfg: Config,
        index: int,
        tenant: Tenant,
        programme: ProgrammeSpec,
        cohort: CohortSpec,
        archetype: Archetype,
        number: int,
    ) -> None:
        self.rng = seeded("learner", cfg.seed, tenant.id, number)
        ids = seeded("ids", cfg.seed, tenant.id, number)
        self.index, self.tenant, self.programme, self.cohort = index, tenant, programme, cohort
        self.ref = learner_ref(tenant, number)
        self.comps = programme.competencies
        self.profile: Profile = make_profile(self.rng, archetype, self.comps, cfg.days)
        self.state = HiddenState.start(self.rng, self.profile.params)
        self.registration = new_uuid(ids)
        self.factory = StatementFactory(tenant, programme, number, self.registration, ids)
        self.stalls = StallTracker(tenant.id, self.ref)
        self.start_ms = int(cfg.start.timestamp() * 1000)
        self.events: list[Event] = []
        self.cursor = self.start_ms
        self.current = 0  # index of the competency being studied
        self.sets_on_current = 0
        self.attempts: dict[str, int] = {}
        self.solved: dict[str, set[str]] = {}

    # --- helpers --------------------------------------------------------------------------

    def day_of(self, ms: int) -> float:
        return (ms - self.start_ms) / DAY_MS

    def emit(self, statement: Json, ms: int, truth: list[Json] | None = None) -> None:
        self.events.append(
            Event(
                ms, self.index, len(self.events), self.tenant.id, self.ref, statement, truth or []
            )
        )

    def at(self, ms: int) -> int:
        """The next event instant: never before ``ms`` and strictly after the previous one."""
        self.cursor = max(ms, self.cursor + 1)
        return self.cursor

    # --- the run ----------------------------------------------------------------------------

    def run(self, days: int) -> None:
        sessions_by_day: dict[int, list[Session]] = {}
        for s in self.cohort.sessions:
            sessions_by_day.setdefault(
                int(self.day_of(int(s.start.timestamp() * 1000))), []
            ).append(s)
        p = self.profile
        for day in range(days):
            if p.drop_day is not None and day >= p.drop_day:
                break
            day_ms = self.start_ms + day * DAY_MS
            plan: list[tuple[int, Session | None]] = []
            for s in sessions_by_day.get(day, []):
                begin = int(s.start.timestamp() * 1000)
                if self.rng.random() < p.attend_prob * p.attendance_factor(self.day_of(begin)):
                    plan.append((begin, s))
            weekend = (self.start_ms // DAY_MS + day + 3) % 7 >= 5  # epoch day 0 was a Thursday
            active = p.active_prob * (0.4 if weekend else 1.0) * p.activity_factor(day + 0.5)
            if self.rng.random() < active:
                for k in range(1 + (self.rng.random() < 0.3)):
                    hour = min(22.5, max(6.0, p.preferred_hour + self.rng.gauss(0, 1.5) + 4 * k))
                    plan.append((day_ms + int(hour * 3_600_000), None))
            for begin, session in sorted(plan, key=lambda x: x[0]):
                if p.drop_day is not None and self.day_of(max(begin, self.cursor)) >= p.drop_day:
                    return
                if session is None:
                    self.study(begin)
                else:
                    self.attend(session)

    def attend(self, session: Session) -> None:
        p = self.profile
        end = int(session.end.timestamp() * 1000)
        fade = p.attendance_factor(self.day_of(end))
        present = 3600 * self.rng.uniform(0.75, 1.0) * (0.4 + 0.6 * fade)
        cid = session.competency.id
        self.state.forget(self.rng, cid, self.day_of(end))
        self.state.learn(self.rng, cid, SESSION_LEARN_FACTOR)
        ms = self.at(end + self.rng.randrange(1000, 120_000))
        self.emit(self.factory.attended(session, ms, present), ms)

    def study(self, begin: int) -> None:
        review = self.current >= len(self.comps)
        comp = self.rng.choice(self.comps) if review else self.comps[self.current]
        module = self.factory.module(comp)
        ms = self.at(begin)
        start = ms
        self.emit(self.factory.attempted(module, ms), ms)
        first = (self.sets_on_current * SET_SIZE) % PRACTICE_ITEMS
        items = [(first + j) % PRACTICE_ITEMS + 1 for j in range(SET_SIZE)]
        right = sum(self.item(comp, n, assessment=False) for n in items)
        ms = self.at(self.cursor + self.rng.randrange(500, 5000))
        score = right / SET_SIZE
        seconds = (ms - start) / 1000
        self.emit(
            self.factory.completed(
                module, ms, raw=right, out_of=SET_SIZE, passed=score >= PASS_SET, seconds=seconds
            ),
            ms,
        )
        solved = self.solved.get(comp.id, set())
        percent = round(100 * len(solved) / PRACTICE_ITEMS)
        ms = self.at(ms + self.rng.randrange(50, 1500))
        self.emit(self.factory.progressed(comp, ms, percent), ms)
        if review:
            return
        self.sets_on_current += 1
        passed = score >= PASS_SET and self.assess(comp)
        if passed or self.sets_on_current >= MAX_SETS:
            self.current += 1
            self.sets_on_current = 0

    def assess(self, comp: CompetencySpec) -> bool:
        obj = self.factory.assessment(comp)
        ms = self.at(self.cursor + self.rng.randrange(5000, 60_000))
        start = ms
        self.emit(self.factory.attempted(obj, ms), ms)
        right = sum(self.item(comp, n, assessment=True) for n in range(1, ASSESSMENT_ITEMS + 1))
        ms = self.at(self.cursor + self.rng.randrange(500, 3000))
        passed = right >= 2
        self.emit(
            self.factory.completed(
                obj,
                ms,
                raw=right,
                out_of=ASSESSMENT_ITEMS,
                passed=passed,
                seconds=(ms - start) / 1000,
            ),
            ms,
        )
        return passed

    def item(self, comp: CompetencySpec, n: int, *, assessment: bool) -> bool:
        """One item: optional hints, then the answer; returns whether it was correct."""
        rng, p, f = self.rng, self.profile, self.factory
        item_id = comp.assessment_item(n) if assessment else comp.practice_item(n)
        label = f"assessment question {n}" if assessment else f"practice question {n}"
        obj = f.item(comp, item_id, label)
        parents = f.item_parents(comp, assessment=assessment)
        attempt = self.attempts.get(item_id, 0) + 1
        self.attempts[item_id] = attempt
        gamed: str | None = None
        if rng.random() < p.gaming_rate:
            gamed = "guess" if assessment or rng.random() < 0.3 else "hint"
        hints = 3 if gamed == "hint" else 0
        if gamed is None and not assessment and rng.random() < p.hint_rate:
            hints = 1 + (rng.random() < 0.3)
        ms = self.at(self.cursor + rng.randrange(1500, 8000))
        t0 = ms
        for h in range(1, hints + 1):
            gap = rng.uniform(1.0, 3.0) if gamed else rng.lognormvariate(math.log(p.pace / 2), 0.4)
            ms = self.at(ms + int(gap * 1000))
            self.emit(f.asked(obj, parents, ms, h, attempt), ms)
        answer_s = rng.uniform(1.0, 4.0) if gamed else rng.lognormvariate(math.log(p.pace), 0.45)
        ms = self.at(ms + int(answer_s * 1000))
        seconds = (ms - t0) / 1000
        statement_id = f.new_id()
        stamp = iso_ms(ms)
        self.state.forget(rng, comp.id, self.day_of(ms))
        truth = state_record(
            statement_id=statement_id, timestamp=stamp, tenant=self.tenant.id,
            learner=self.ref, competency=comp.id, gamed=gamed, state=self.state,
        )  # fmt: skip
        self.stalls.before(comp.id, self.state.known[comp.id], statement_id, stamp, ms)
        correct = self.state.answer(rng, comp.id, gamed)
        self.stalls.after(comp.id, self.state.known[comp.id], stamp)
        key = correct_choice(item_id)
        response = key if correct else rng.choice([c for c in CHOICES if c != key])
        st = f.answered(
            obj, parents, ms, response=response, correct=correct, seconds=seconds, hints=hints,
            attempt=attempt, statement_id=statement_id,
        )  # fmt: skip
        self.emit(st, ms, [truth])
        if correct and not assessment:
            self.solved.setdefault(comp.id, set()).add(item_id)
        return correct

    def learner_record(self) -> Json:
        p = self.profile
        return {
            "kind": "learner",
            "tenant": self.tenant.id,
            "learner": self.ref,
            "name": self.factory.actor["name"],
            "archetype": p.archetype,
            "programme": self.programme.id,
            "cohort": self.cohort.id,
            "registration": self.registration,
            "stuck": list(p.stuck),
            "drop_day": p.drop_day,
            "params": {c: vars(v) for c, v in p.params.items()},
            "final_known": dict(self.state.known),
            "final_p_known": {c: round(v, 4) for c, v in self.state.p_known.items()},
            "statements": len(self.events),
        }

    def dropout_record(self) -> tuple[int, Json] | None:
        p = self.profile
        if p.drop_day is None:
            return None

        def stamp(day: float) -> str:
            return iso_ms(self.start_ms + round(max(0.0, day) * DAY_MS))

        ms = self.start_ms + round(p.drop_day * DAY_MS)
        return ms, {
            "kind": "dropout",
            "timestamp": stamp(p.drop_day),
            "tenant": self.tenant.id,
            "learner": self.ref,
            "last_statement_at": self.events[-1].statement["timestamp"] if self.events else None,
            "attendance_fade_from": stamp(p.drop_day - ATTENDANCE_FADE_DAYS),
            "activity_fade_from": stamp(p.drop_day - ACTIVITY_FADE_DAYS),
        }


def simulate(cfg: Config) -> Simulation:
    """Run the whole academy; deterministic for ``cfg``."""
    if cfg.learners < 0 or cfg.days < 1:
        raise ValueError("learners must be >= 0 and days >= 1")
    academy = build_academy(cfg.seed, cfg.days, cfg.tenants, cfg.start)
    archetypes = archetype_counts(cfg.learners, cfg.mix)
    seeded("archetypes", cfg.seed).shuffle(archetypes)
    learners: list[_Learner] = []
    for index, archetype in enumerate(archetypes):
        tenant = academy.tenants[index % len(academy.tenants)]
        number = index // len(academy.tenants) + 1
        programme = tenant.programmes[(number - 1) % len(tenant.programmes)]
        cohort = programme.cohorts[-1] if programme.cohorts else None
        if cohort is None or len(cohort.learners) >= COHORT_SIZE:
            cohort = add_cohort(academy, tenant, programme)
        learner = _Learner(
            cfg=cfg, index=index, tenant=tenant, programme=programme, cohort=cohort,
            archetype=archetype, number=number,
        )  # fmt: skip
        cohort.learners.append(learner.ref)
        learners.append(learner)
    events: list[Event] = []
    extra: list[tuple[int, Json]] = []
    for learner in learners:
        learner.run(cfg.days)
        events += learner.events
        extra += learner.stalls.records
        dropout = learner.dropout_record()
        if dropout is not None:
            extra.append(dropout)
    events.sort(key=lambda e: (e.ms, e.learner, e.seq))
    records = sorted((lr.learner_record() for lr in learners), key=_learner_sort_key)
    return Simulation(academy, events, records, extra)


def _learner_sort_key(record: Json) -> tuple[str, str]:
    return record["tenant"], record["learner"]


def end_of(cfg: Config) -> datetime:
    return cfg.start + timedelta(days=cfg.days)
