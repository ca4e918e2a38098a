"""The competency framework file: what a tenant's academy teaches and how statements map to it.

A framework is loaded by the progress service (CLI and API) and written by the classroom
simulator. One YAML or JSON document per tenant and version::

    tenant: acme
    framework: data-science-academy
    version: 3
    effective_from: 2026-01-01T00:00:00Z     # applies to statements from this event time on
    model: bkt                               # or "elo"
    competencies:
      - id: ds.python.basics
        name: Python basics
        parent: ds.python                    # optional, another competency id
        bkt: {prior: 0.2, learn: 0.15, forget: 0.02, guess: 0.2, slip: 0.1}   # optional
    mappings:                                # first the activity rules, then the broader ones
      - match: {activity_id: "https://lms.example.com/activities/py-101/q1"}
        competency: ds.python.basics
        weight: 1.0
      - match: {activity_type: "http://adlnet.gov/expapi/activities/cmi.interaction"}
      - match: {context_parent: "https://lms.example.com/courses/py-101"}
      - match: {extension: {key: "https://skillstream.io/xapi/ext/skill", value: "python"}}
    programmes:
      - id: ds-2026-spring
        name: Data science, spring 2026
        business_unit: retail-banking
        start: 2026-02-01
        end: 2026-06-30
        competencies: [ds.python.basics]
        cohorts: [{id: cohort-a, learners: ["account:https://lms.example.com|u-1"]}]
        sessions:                            # scheduled live virtual classes
          - {id: s1, activity_id: "https://vc.example.com/sessions/1",
             start: 2026-02-03T09:00:00Z, end: 2026-02-03T10:00:00Z}

Learners in cohorts are written as ``"<ifi kind>:<value>"`` (``account:<homePage>|<name>``,
``mbox:mailto:...``, ``mbox_sha1sum:<hex>``, ``openid:<uri>``); the progress service turns them
into learner keys with the deployment's salt, so the file never needs the salt.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Iri = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", max_length=2048)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
LearnerRef = Annotated[str, Field(pattern=r"^(account|mbox|mbox_sha1sum|openid):.+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BktParams(_Model):
    prior: Probability = 0.2
    learn: Probability = 0.15
    forget: Probability = 0.02
    guess: Annotated[float, Field(ge=0.0, le=0.5)] = 0.2
    slip: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1


class Competency(_Model):
    id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    parent: Id | None = None
    bkt: BktParams | None = None


class ExtensionMatch(_Model):
    key: Iri
    value: str | int | float | bool


class Match(_Model):
    """Exactly one way a statement is recognised as evidence."""

    activity_id: Iri | None = None
    activity_type: Iri | None = None
    context_parent: Iri | None = None
    extension: ExtensionMatch | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [
            v
            for v in (self.activity_id, self.activity_type, self.context_parent, self.extension)
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a match names exactly one of activity_id, activity_type, context_parent, extension"
            )
        return self


class Mapping(_Model):
    match: Match
    competency: Id
    weight: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class Cohort(_Model):
    id: Id
    learners: list[LearnerRef]


class LiveSession(_Model):
    id: Id
    activity_id: Iri
    start: datetime
    end: datetime


class Programme(_Model):
    id: Id
    name: str = Field(min_length=1, max_length=200)
    business_unit: Id
    start: date
    end: date
    competencies: list[Id]
    cohorts: list[Cohort] = []
    sessions: list[LiveSession] = []


class Framework(_Model):
    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    framework: Id
    version: Annotated[int, Field(ge=1)]
    effective_from: datetime
    model: Literal["bkt", "elo"] = "bkt"
    competencies: list[Competency] = Field(min_length=1)
    mappings: list[Mapping] = []
    programmes: list[Programme] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        ids = [c.id for c in self.competencies]
        known = set(ids)
        if len(known) != len(ids):
            raise ValueError("competency ids must be unique")
        problems = [
            f"competency {c.id}: unknown parent {c.parent}"
            for c in self.competencies
            if c.parent and c.parent not in known
        ]
        problems += [
            f"mapping to unknown competency {m.competency}"
            for m in self.mappings
            if m.competency not in known
        ]
        for programme in self.programmes:
            problems += [
                f"programme {programme.id}: unknown competency {c}"
                for c in programme.competencies
                if c not in known
            ]
            if programme.end < programme.start:
                problems.append(f"programme {programme.id} ends before it starts")
        if problems:
            raise ValueError("; ".join(problems))
        if self.effective_from.tzinfo is None:
            raise ValueError("effective_from carries a timezone")
        return self
