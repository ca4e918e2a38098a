"""The simulated academy: tenants, business units, programmes, cohorts, timetable and activities.

Everything here is plain data derived from the seed. :func:`framework_of` turns one tenant into
the :class:`shared.framework.Framework` the progress service loads, so the competency mappings
and the statements the simulator emits always agree.

Activity IRIs (``<lms>`` is ``https://lms.<tenant>.example.com``)::

    course (programme)   <lms>/courses/<programme>                               type course
    module (competency)  <lms>/courses/<programme>/modules/<slug>                type module
    practice item        <module>/practice/q<n>                                  cmi.interaction
    assessment           <module>/assessment                                     type assessment
    assessment item      <module>/assessment/q<n>                                cmi.interaction
    live session         https://vc.<tenant>.example.com/sessions/<cohort>-<n>  type meeting
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from shared.framework import BktParams, Competency, Framework, LiveSession, Mapping, Match
from shared.framework import Cohort as FrameworkCohort
from shared.framework import Programme as FrameworkProgramme

ActorKind = Literal["account", "mbox"]

ACTIVITY_TYPES: Final = {
    "course": "http://adlnet.gov/expapi/activities/course",
    "module": "http://adlnet.gov/expapi/activities/module",
    "assessment": "http://adlnet.gov/expapi/activities/assessment",
    "interaction": "http://adlnet.gov/expapi/activities/cmi.interaction",
    "meeting": "http://adlnet.gov/expapi/activities/meeting",
}
PRACTICE_ITEMS: Final = 8
ASSESSMENT_ITEMS: Final = 3
CHOICES: Final = ("a", "b", "c", "d")
COHORT_SIZE: Final = 25

# (tenant, actor kind, platform, business units and their programmes)
_TENANTS: Final[tuple[tuple[str, ActorKind, str], ...]] = (
    ("acme", "account", "Moodle 4.3"),
    ("globex", "mbox", "Canvas LMS"),
    ("initech", "account", "Docebo"),
    ("umbrella", "mbox", "Cornerstone"),
)
# programme templates: (id, name, business unit, [(competency slug, name, difficulty 0..1)])
_PROGRAMMES: Final = (
    (
        "ds",
        "Data science foundations",
        "analytics",
        [
            ("python-basics", "Python basics", 0.2),
            ("dataframes", "Working with data frames", 0.4),
            ("statistics", "Descriptive statistics", 0.5),
            ("visualisation", "Data visualisation", 0.3),
            ("regression", "Linear regression", 0.7),
            ("model-evaluation", "Evaluating models", 0.8),
        ],
    ),
    (
        "sec",
        "Secure engineering",
        "platform-engineering",
        [
            ("threat-modelling", "Threat modelling", 0.5),
            ("auth", "Authentication and sessions", 0.4),
            ("injection", "Injection flaws", 0.3),
            ("crypto-basics", "Applied cryptography", 0.8),
            ("incident-response", "Incident response", 0.6),
        ],
    ),
)


@dataclass(frozen=True)
class CompetencySpec:
    id: str
    slug: str
    name: str
    parent: str
    bkt: BktParams
    module: str
    assessment: str

    def practice_item(self, n: int) -> str:
        return f"{self.module}/practice/q{n}"

    def assessment_item(self, n: int) -> str:
        return f"{self.module}/assessment/q{n}"


@dataclass(frozen=True)
class Session:
    """A scheduled live virtual class of one cohort; it covers one competency."""

    id: str
    activity_id: str
    start: datetime
    end: datetime
    competency: CompetencySpec


@dataclass
class CohortSpec:
    id: str
    sessions: list[Session] = field(default_factory=list)
    learners: list[str] = field(default_factory=list)


@dataclass
class ProgrammeSpec:
    id: str
    name: str
    business_unit: str
    course: str
    start: date
    end: date
    competencies: list[CompetencySpec]
    cohorts: list[CohortSpec] = field(default_factory=list)


@dataclass
class Tenant:
    id: str
    actor_kind: ActorKind
    platform: str
    lms: str
    programmes: list[ProgrammeSpec]


@dataclass
class Academy:
    seed: int
    start: datetime
    days: int
    tenants: list[Tenant]


def seeded(*parts: object) -> random.Random:
    """An independent random stream named by ``parts`` (stable across runs and platforms)."""
    return random.Random(":".join(map(str, parts)))  # noqa: S311 - a simulation, not security


def _bkt(rng: random.Random, difficulty: float) -> BktParams:
    return BktParams(
        prior=round(0.25 - 0.15 * difficulty + rng.uniform(-0.03, 0.03), 3),
        learn=round(0.36 - 0.18 * difficulty + rng.uniform(-0.02, 0.02), 3),
        forget=round(0.01 + 0.02 * difficulty, 3),
        guess=0.25,
        slip=round(0.08 + 0.04 * difficulty, 3),
    )


def _timetable(
    *, cohort: str, vc: str, start: datetime, days: int, comps: list[CompetencySpec], slot: int
) -> list[Session]:
    """Two live classes a week (Tuesday and Thursday), walking through the competencies."""
    days_of = [d for d in range(days) if (start + timedelta(days=d)).weekday() in (1, 3)]
    sessions = []
    for n, day in enumerate(days_of, start=1):
        begin = start + timedelta(days=day, hours=9 + 2 * (slot % 4))
        topic = comps[min(len(comps) - 1, (n - 1) * len(comps) // max(1, len(days_of)))]
        sessions.append(
            Session(
                id=f"{cohort}-s{n}",
                activity_id=f"{vc}/sessions/{cohort}-{n}",
                start=begin,
                end=begin + timedelta(hours=1),
                competency=topic,
            )
        )
    return sessions


def build_academy(seed: int, days: int, tenants: int, start: datetime) -> Academy:
    """The academy's structure; learners are attached to cohorts by :func:`assign_cohorts`."""
    if not 1 <= tenants <= len(_TENANTS):
        raise ValueError(f"tenants must be between 1 and {len(_TENANTS)}")
    rng = seeded("academy", seed)
    result = []
    for tenant_id, kind, platform in _TENANTS[:tenants]:
        lms = f"https://lms.{tenant_id}.example.com"
        programmes = []
        for prog_id, name, unit, comps in _PROGRAMMES:
            programme_id = f"{prog_id}-{start:%Y-%m}"
            course = f"{lms}/courses/{programme_id}"
            root = f"{prog_id}"
            specs = [
                CompetencySpec(
                    id=f"{root}.{slug}",
                    slug=slug,
                    name=cname,
                    parent=root,
                    bkt=_bkt(rng, difficulty),
                    module=f"{course}/modules/{slug}",
                    assessment=f"{course}/modules/{slug}/assessment",
                )
                for slug, cname, difficulty in comps
            ]
            programmes.append(
                ProgrammeSpec(
                    id=programme_id,
                    name=name,
                    business_unit=unit,
                    course=course,
                    start=start.date(),
                    end=(start + timedelta(days=max(days, 1) - 1)).date(),
                    competencies=specs,
                )
            )
        result.append(Tenant(tenant_id, kind, platform, lms, programmes))
    return Academy(seed=seed, start=start, days=days, tenants=result)


def add_cohort(academy: Academy, tenant: Tenant, programme: ProgrammeSpec) -> CohortSpec:
    """Open a new cohort (with its timetable) in ``programme``."""
    number = len(programme.cohorts) + 1
    cohort_id = f"{programme.id}-c{number}"
    vc = f"https://vc.{tenant.id}.example.com"
    cohort = CohortSpec(
        id=cohort_id,
        sessions=_timetable(
            cohort=cohort_id,
            vc=vc,
            start=academy.start,
            days=academy.days,
            comps=programme.competencies,
            slot=number - 1,
        ),
    )
    programme.cohorts.append(cohort)
    return cohort


def learner_ref(tenant: Tenant, index: int) -> str:
    """The learner as written in a framework cohort (``account:<homePage>|<name>`` or mbox)."""
    if tenant.actor_kind == "account":
        return f"account:{tenant.lms}|u-{index:05d}"
    return f"mbox:mailto:learner{index:05d}@{tenant.id}.example.com"


def _competencies(tenant: Tenant) -> list[Competency]:
    out: list[Competency] = []
    for programme, (_, name, _, _) in zip(tenant.programmes, _PROGRAMMES, strict=True):
        root = programme.competencies[0].parent
        out.append(Competency(id=root, name=name))
        out += [
            Competency(id=c.id, name=c.name, parent=root, bkt=c.bkt) for c in programme.competencies
        ]
    return out


def _mappings(tenant: Tenant) -> list[Mapping]:
    """Activity rules first (items 1.0, assessment 1.0, module 0.5, sessions 0.2), then the
    broader context-parent rules."""
    exact: list[Mapping] = []
    broad: list[Mapping] = []
    for programme in tenant.programmes:
        for c in programme.competencies:
            items = [c.practice_item(n) for n in range(1, PRACTICE_ITEMS + 1)]
            items += [c.assessment_item(n) for n in range(1, ASSESSMENT_ITEMS + 1)]
            exact += [Mapping(match=Match(activity_id=i), competency=c.id) for i in items]
            exact.append(Mapping(match=Match(activity_id=c.assessment), competency=c.id))
            exact.append(Mapping(match=Match(activity_id=c.module), competency=c.id, weight=0.5))
            broad.append(Mapping(match=Match(context_parent=c.module), competency=c.id))
            broad.append(Mapping(match=Match(context_parent=c.assessment), competency=c.id))
        for cohort in programme.cohorts:
            exact += [
                Mapping(
                    match=Match(activity_id=s.activity_id), competency=s.competency.id, weight=0.2
                )
                for s in cohort.sessions
            ]
    return exact + broad


def framework_of(academy: Academy, tenant: Tenant) -> Framework:
    """The competency framework file of ``tenant`` (validated by constructing it)."""
    programmes = [
        FrameworkProgramme(
            id=p.id,
            name=p.name,
            business_unit=p.business_unit,
            start=p.start,
            end=p.end,
            competencies=[c.id for c in p.competencies],
            cohorts=[FrameworkCohort(id=c.id, learners=list(c.learners)) for c in p.cohorts],
            sessions=[
                LiveSession(
                    id=s.id, activity_id=s.activity_id, start=s.start, end=s.end, cohort=c.id
                )
                for c in p.cohorts
                for s in c.sessions
            ],
        )
        for p in tenant.programmes
    ]
    return Framework(
        tenant=tenant.id,
        framework=f"{tenant.id}-academy",
        version=1,
        effective_from=academy.start.astimezone(UTC),
        model="bkt",
        competencies=_competencies(tenant),
        mappings=_mappings(tenant),
        programmes=programmes,
    )
