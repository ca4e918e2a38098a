"""The competency framework file: what a tenant's academy teaches and how statements map to it.

A framework is loaded by the progress service (CLI and API) and written by the classroom
simulator. One YAML or JSON document per tenant and version::

    tenant: acme
    framework: data-science-academy
    version: 3
    effective_from: 2026-01-01T00:00:00Z     # applies to statements from this event time on
    model: bkt                               # or "elo"
    ability: {prior_weight: 16, learn_weight: 8, pseudo_count: 10}   # optional, BKT only
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
             start: 2026-02-03T09:00:00Z, end: 2026-02-03T10:00:00Z,
             cohort: cohort-a}               # optional: only this cohort is expected

Learners in cohorts are written as ``"<ifi kind>:<value>"`` (``account:<homePage>|<name>``,
``mbox:mailto:...``, ``mbox_sha1sum:<hex>``, ``openid:<uri>``); the services turn them into
learner keys with the deployment's salt (:func:`ref_to_key`), so the file never needs the salt.

A session's ``cohort`` (one of its programme's cohorts) says who is expected at it; without one,
every learner of the programme is. The alerts service counts the sessions a learner missed from
that (``python -m services.alerts.cli programmes load``). ``cohort`` and the framework's
``ability`` were added after the first framework files were stored: each is left out of a
document when unset, so a stored version's content hash (``services/progress``) stays what it
was.

:func:`parse_documents` reads a file (the progress and alerts CLIs both load the same file).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, cast

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from shared.errors import PermanentError
from shared.identity import IfiKind, learner_key

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


class AbilityParams(_Model):
    """Learner ability for BKT (``services/progress/mastery.py``): how far a learner's answers
    so far ran above or below the model's predictions shifts, on the log-odds scale, the prior of
    each competency the learner starts and the learn rate of every update. The weights 0 (the
    default) turn it off; ``fit --ability`` estimates them from history."""

    prior_weight: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    learn_weight: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    pseudo_count: Annotated[float, Field(gt=0.0, le=10_000.0)] = 10.0


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
    cohort: Id | None = None  # the cohort expected at it; None: the whole programme

    @model_serializer(mode="wrap")
    def _unset_cohort_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = cast(dict[str, Any], handler(self))
        if self.cohort is None:
            data.pop("cohort", None)
        return data


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
    ability: AbilityParams | None = None  # BKT only; None: off
    competencies: list[Competency] = Field(min_length=1)
    mappings: list[Mapping] = []
    programmes: list[Programme] = []

    @model_serializer(mode="wrap")
    def _unset_ability_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = cast(dict[str, Any], handler(self))
        if self.ability is None:
            data.pop("ability", None)
        return data

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
            cohorts = {c.id for c in programme.cohorts}
            problems += [
                f"programme {programme.id}: session {s.id}: unknown cohort {s.cohort}"
                for s in programme.sessions
                if s.cohort is not None and s.cohort not in cohorts
            ]
        if problems:
            raise ValueError("; ".join(problems))
        if self.effective_from.tzinfo is None:
            raise ValueError("effective_from carries a timezone")
        return self


class FrameworkFileError(PermanentError):
    """A framework file that cannot be parsed or breaks the framework rules."""

    reason = "bad_framework"


def parse_documents(text: str) -> list[Framework]:
    """Every framework in ``text``: JSON (an object or a list) or YAML (``---`` documents)."""
    stripped = text.lstrip()
    raw: list[Any]
    try:
        if stripped.startswith(("{", "[")):
            loaded = orjson.loads(text)
            raw = loaded if isinstance(loaded, list) else [loaded]
        else:
            raw = [d for d in yaml.safe_load_all(text) if d is not None]
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise FrameworkFileError(f"not valid JSON or YAML: {exc}") from None
    if not raw:
        raise FrameworkFileError("no framework document found")
    out: list[Framework] = []
    for i, doc in enumerate(raw):
        try:
            out.append(Framework.model_validate(doc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "$"
            raise FrameworkFileError(f"document {i + 1}: {where}: {first['msg']}") from None
    return out


def ref_to_key(ref: str, salt: str) -> str:
    """``"<ifi kind>:<value>"`` (as in cohort files) -> the learner key under ``salt``."""
    kind, _, value = ref.partition(":")
    return learner_key(cast(IfiKind, kind), value, salt)
