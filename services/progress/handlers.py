"""The pure logic of the worker: one statement envelope and a learner's state in, the new state,
the ``progress.updates`` envelopes and the projection rows out. No I/O here.

Idempotency: each ProgressUpdate's ``event_id`` is ``uuid5(statement event id | competency)``,
so publishing again after a crash gives the same ids. A statement whose event id is in the
learner's ring of recent ids (:mod:`services.progress.state`) is a redelivery: the state is left
as it is, and the updates and rows are rebuilt from the current state with the same event ids
(the first delivery may have died before they were published or projected); downstream drops
what it already has by event id, the projection by its offset watermark.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from typing import Any, Final

import orjson

from services.progress.errors import StatementEvidenceError
from services.progress.evidence import EvidenceError, extract_evidence, parse_duration
from services.progress.frameworks import FrameworkRegistry, FrameworkVersion
from services.progress.mastery import BktModel, EloModel, EloState, MasteryState, record_activity
from services.progress.state import CompetencyState, LearnerRecord
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.events import EvidenceKind, ProgressUpdate

#: namespace of progress update event ids: uuid5 of ``"<statement event id>|<competency>"``
UPDATE_NAMESPACE: Final = uuid.UUID("b3c1e0a4-5f3d-5e8a-9c2b-7d41f6a9e812")
_TALLY_FIELDS: Final = tuple(f.name for f in fields(MasteryState) if f.name != "log_odds")


def update_event_id(statement_event_id: uuid.UUID, competency: str | None) -> uuid.UUID:
    return uuid.uuid5(UPDATE_NAMESPACE, f"{statement_event_id}|{competency or ''}")


@dataclass(frozen=True, slots=True)
class CompetencyRow:
    tenant: str
    learner_key: str
    competency: str
    framework: str
    framework_version: int
    mastery: float
    mastered: bool
    attempts: int
    correct_total: int
    correct_streak: int
    wrong_streak: int
    hints: int
    time_on_task_s: float
    first_event_at: datetime | None
    last_event_at: datetime | None
    mastered_at: datetime | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tenant, self.learner_key, self.competency)

    def values(self) -> tuple[Any, ...]:
        """The columns in table order (``dataclasses.astuple`` deep-copies: too slow here)."""
        return tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class DailyRow:
    tenant: str
    learner_key: str
    competency: str
    day: date
    mastery: float


@dataclass(frozen=True, slots=True)
class ActivityRow:
    tenant: str
    learner_key: str
    events: int
    first_event_at: datetime
    last_event_at: datetime
    week: date  # Monday of the event's week


@dataclass(frozen=True, slots=True)
class UpdateOut:
    """One message for ``progress.updates``: its event id, payload and encoded envelope."""

    event_id: uuid.UUID
    update: ProgressUpdate
    value: bytes  # the envelope, as JSON (shared.envelope.Envelope parses it)


def encode_update(env: Envelope, event_id: uuid.UUID, update: ProgressUpdate) -> bytes:
    """The ``skillstream.progress_update.v1`` envelope of ``update``, encoded directly: the
    payload was validated when built and the other fields come from a validated envelope, so
    validating them again (``Envelope.new``) would only cost time on the hot path."""
    return orjson.dumps(
        {
            "schema": PROGRESS_UPDATE_V1,
            "event_id": event_id,
            "tenant": env.tenant,
            "learner_key": env.learner_key,
            "occurred_at": env.occurred_at,
            "recorded_at": env.recorded_at,
            "payload": update.model_dump(mode="json"),
        }
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    record: LearnerRecord
    duplicate: bool
    evidence: EvidenceKind
    updates: tuple[UpdateOut, ...]
    competencies: tuple[CompetencyRow, ...]
    daily: tuple[DailyRow, ...]
    activity: ActivityRow


def statement_of(env: Envelope) -> dict[str, Any]:
    statement = env.payload.get("statement")
    if not isinstance(statement, dict):
        raise StatementEvidenceError("payload.statement is not a JSON object")
    return statement


def _statement_id(statement: dict[str, Any], fallback: uuid.UUID) -> uuid.UUID:
    sid = statement.get("id")
    if isinstance(sid, str):
        try:
            return uuid.UUID(sid)
        except ValueError:
            pass
    return fallback


def _duration(statement: dict[str, Any]) -> float | None:
    result = statement.get("result")
    text = result.get("duration") if isinstance(result, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None


def _fit(state: MasteryState | EloState, model: BktModel | EloModel) -> MasteryState | EloState:
    """``state`` as the model's own state type (a framework may switch BKT <-> Elo): the
    counters carry over, the estimate starts from the model's initial value."""
    if isinstance(model, BktModel) == isinstance(state, MasteryState):
        return state
    initial = model.initial()
    return replace(initial, **{name: getattr(state, name) for name in _TALLY_FIELDS})


def _step(
    cs: CompetencyState,
    *,
    model: BktModel | EloModel,
    kind: EvidenceKind,
    correct: bool | None,
    weight: float,
    when: datetime,
    duration: float,
) -> tuple[CompetencyState, float | None]:
    """The competency state after one piece of evidence, and the prediction before it."""
    state = _fit(cs.model, model)
    prediction: float | None = None
    hints = cs.hints
    if kind == "attempt" and correct is not None:
        prediction = model.predict(state)  # type: ignore[arg-type]
        state = model.update(state, correct, weight, at=when, duration_s=duration)  # type: ignore[arg-type]
    else:
        state = record_activity(state, when, duration)  # type: ignore[type-var]
        hints += 1 if kind == "hint" else 0
    mastered_at = cs.mastered_at
    if mastered_at is None and model.mastery(state) >= model.threshold:  # type: ignore[arg-type]
        mastered_at = when
    first = when if cs.first_event_at is None else min(cs.first_event_at, when)
    return CompetencyState(state, hints, first, mastered_at), prediction


class Processor:
    """Applies statements to learner records under the frameworks of a registry."""

    def __init__(self, registry: FrameworkRegistry, recent_ids: int = 64) -> None:
        self.registry = registry
        self.recent_ids = recent_ids

    def process(self, env: Envelope, record: LearnerRecord) -> Outcome:
        statement = statement_of(env)
        when = env.occurred_at
        version = self.registry.at(env.tenant, when)
        duplicate = record.seen(env.event_id)
        statement_id = _statement_id(statement, env.event_id)
        base: dict[str, Any] = {"statement_id": statement_id}
        if version is None:
            base["duration_s"] = _duration(statement)
            if not duplicate:
                record = record.remember(env.event_id, when, self.recent_ids)
            update = ProgressUpdate(evidence="activity", **base)
            return self._outcome(env, record, duplicate, "activity", [(None, update)], [], None)
        try:
            evidence = extract_evidence(statement, version.index, default_time=when)
        except EvidenceError as exc:  # cannot happen with a default time; kept as a guard
            raise StatementEvidenceError(str(exc)) from None
        duration = evidence.duration_s
        base["duration_s"] = duration
        membership = version.members.get(env.learner_key)
        fw = version.framework
        base |= {
            "framework": fw.framework,
            "framework_version": fw.version,
            "programme": membership.programme if membership else evidence.programme_id,
            "business_unit": membership.business_unit if membership else None,
            "mode": evidence.mode,
            "session_id": evidence.session_id,
        }
        if evidence.programme_id is not None:
            base["programme"] = evidence.programme_id
        kind: EvidenceKind = evidence.kind
        if not evidence.competencies:
            if not duplicate:
                record = record.remember(env.event_id, when, self.recent_ids)
            update = ProgressUpdate(evidence=kind, **base)
            return self._outcome(env, record, duplicate, kind, [(None, update)], [], version)
        comps = dict(record.competencies)
        pairs: list[tuple[str | None, ProgressUpdate]] = []
        touched: list[str] = []
        for cw in evidence.competencies:
            cid = cw.competency
            model = version.models[cid]
            current = comps.get(cid) or CompetencyState(model.initial())
            before: float | None = None
            prediction: float | None = None
            if duplicate:
                new = current
                prediction = None
            else:
                before = model.mastery(_fit(current.model, model))  # type: ignore[arg-type]
                new, prediction = _step(
                    current,
                    model=model,
                    kind=kind,
                    correct=evidence.correct,
                    weight=cw.weight,
                    when=when,
                    duration=duration or 0.0,
                )
                comps[cid] = new
            state = new.model
            after = model.mastery(_fit(state, model))  # type: ignore[arg-type]
            touched.append(cid)
            pairs.append(
                (
                    cid,
                    ProgressUpdate(
                        evidence=kind,
                        competency=cid,
                        correct=evidence.correct if kind == "attempt" else None,
                        predicted_correct=prediction,
                        mastery_before=before,
                        mastery_after=after,
                        mastered=after >= model.threshold,
                        attempts=state.attempts,
                        correct_total=state.correct,
                        correct_streak=state.correct_streak,
                        wrong_streak=state.wrong_streak,
                        hints=new.hints,
                        time_on_task_s=state.time_on_task_s,
                        **base,
                    ),
                )
            )
        if not duplicate:
            record = record.remember(env.event_id, when, self.recent_ids)
            record = replace(record, competencies=comps)
        return self._outcome(env, record, duplicate, kind, pairs, touched, version)

    def _outcome(  # noqa: PLR0917 - private, called positionally from three places
        self,
        env: Envelope,
        record: LearnerRecord,
        duplicate: bool,
        kind: EvidenceKind,
        pairs: list[tuple[str | None, ProgressUpdate]],
        touched: list[str],
        version: FrameworkVersion | None,
    ) -> Outcome:
        updates = []
        for cid, update in pairs:
            event_id = update_event_id(env.event_id, cid)
            updates.append(UpdateOut(event_id, update, encode_update(env, event_id, update)))
        rows: list[CompetencyRow] = []
        daily: list[DailyRow] = []
        if version is not None:
            fw = version.framework
            day = env.occurred_at.date()
            for cid in touched:
                cs = record.competencies.get(cid)
                if cs is None:  # a redelivery whose first pass predates this competency
                    continue
                model = version.models[cid]
                mastery = model.mastery(_fit(cs.model, model))  # type: ignore[arg-type]
                m = cs.model
                rows.append(
                    CompetencyRow(
                        env.tenant,
                        env.learner_key,
                        cid,
                        fw.framework,
                        fw.version,
                        mastery,
                        mastery >= model.threshold,
                        m.attempts,
                        m.correct,
                        m.correct_streak,
                        m.wrong_streak,
                        cs.hints,
                        m.time_on_task_s,
                        cs.first_event_at,
                        m.last_event_at,
                        cs.mastered_at,
                    )
                )
                daily.append(DailyRow(env.tenant, env.learner_key, cid, day, mastery))
        first = record.first_event_at or env.occurred_at
        last = record.last_event_at or env.occurred_at
        day = env.occurred_at.date()
        activity = ActivityRow(
            env.tenant,
            env.learner_key,
            record.events,
            first,
            last,
            day - timedelta(days=day.weekday()),
        )
        return Outcome(record, duplicate, kind, tuple(updates), tuple(rows), tuple(daily), activity)
