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

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Protocol

import orjson

from services.progress.errors import StatementEvidenceError
from services.progress.evidence import EvidenceError, extract_raw, parse_duration
from services.progress.frameworks import FrameworkRegistry, FrameworkVersion
from services.progress.mastery import BktModel, EloModel, EloState, MasteryState, record_activity
from services.progress.state import CompetencyState, LearnerRecord
from shared.envelope import PROGRESS_UPDATE_V1, Envelope, message_key
from shared.events import EvidenceKind, ProgressUpdate

#: namespace of progress update event ids: uuid5 of ``"<statement event id>|<competency>"``
UPDATE_NAMESPACE: Final = uuid.UUID("b3c1e0a4-5f3d-5e8a-9c2b-7d41f6a9e812")
_TALLY_FIELDS: Final = tuple(f.name for f in fields(MasteryState) if f.name != "log_odds")


_NAMESPACE_BYTES: Final = UPDATE_NAMESPACE.bytes
_V5_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits
_V5_SET: Final = (5 << 76) | (0x8000 << 48)  # version 5, RFC 4122 variant


def update_event_id(statement_event_id: uuid.UUID, competency: str | None) -> uuid.UUID:
    """``uuid.uuid5(UPDATE_NAMESPACE, ...)``, computed as it does (SHA-1 of namespace + name,
    first 16 bytes, version and variant set) without its per-call overhead."""
    name = f"{statement_event_id}|{competency or ''}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


class EnvelopeView(Protocol):
    """What the processor reads of a statement envelope: an :class:`Envelope`, or the
    :class:`StatementEnvelope` that :func:`parse_statement_envelope` builds without pydantic."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def tenant(self) -> str: ...
    @property
    def learner_key(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def key(self) -> bytes: ...


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build (hot path)
class StatementEnvelope:
    """An envelope whose fields passed the checks :class:`Envelope` makes (same values)."""

    schema_: str
    event_id: uuid.UUID
    tenant: str
    learner_key: str
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    key: bytes


_ENVELOPE_KEYS: Final = frozenset(
    ("schema", "event_id", "tenant", "learner_key", "occurred_at", "recorded_at", "payload")
)
# the shapes the fast path takes; anything else goes through the pydantic model, which then
# accepts it (a rarer spelling) or says exactly what is wrong
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # shared.envelope.TENANT_PATTERN
_LEARNER = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
# checked learners ((tenant, learner_key) -> message key) and parsed times; each emptied when
# full (a bound, not an eviction policy: a miss only costs the check again). Times repeat
# only within an ingest batch (its ``recorded_at``; event times are all different), so their
# cache is small: a large one only held every event's time until it was emptied (memory that
# grew for minutes in the soak run for no hits)
_CACHE_MAX: Final = 100_000
_TIMES_MAX: Final = 1_024
_KEYS: dict[tuple[str, str], bytes] = {}
_TIMES: dict[str, datetime] = {}


def _utc(text: Any) -> datetime | None:
    if type(text) is not str:
        return None
    value = _TIMES.get(text)
    if value is None:
        if _TIME.fullmatch(text) is None:
            return None
        try:
            value = datetime.fromisoformat(text).astimezone(UTC)
        except ValueError:
            return None
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        _TIMES[text] = value
    return value


def _key(tenant: Any, learner: Any) -> bytes | None:
    if type(tenant) is not str or type(learner) is not str:
        return None
    key = _KEYS.get((tenant, learner))
    if key is None:
        if _TENANT.fullmatch(tenant) is None or _LEARNER.fullmatch(learner) is None:
            return None
        key = message_key(tenant, learner)
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        _KEYS[(tenant, learner)] = key
    return key


def _fast_envelope(raw: bytes | str, accepted: frozenset[str]) -> StatementEnvelope | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or data.keys() != _ENVELOPE_KEYS:
        return None
    schema, event_id, payload = data["schema"], data["event_id"], data["payload"]
    ok = (
        type(schema) is str
        and schema in accepted
        and type(payload) is dict
        and type(event_id) is str
        and _UUID.fullmatch(event_id) is not None
    )
    key = _key(data["tenant"], data["learner_key"]) if ok else None
    occurred, recorded = _utc(data["occurred_at"]), _utc(data["recorded_at"])
    if key is None or occurred is None or recorded is None:
        return None
    return StatementEnvelope(
        schema,
        uuid.UUID(event_id),
        data["tenant"],
        data["learner_key"],
        occurred,
        recorded,
        payload,
        key,
    )


def parse_statement_envelope(
    raw: bytes | str, accepted: frozenset[str]
) -> StatementEnvelope | Envelope:
    """:meth:`Envelope.parse` for the worker's hot path: the envelope is decoded once (orjson)
    and checked field by field as the model does (keys exactly, schema accepted, uuid, tenant
    and learner key patterns, aware times, payload an object), without building a model.
    Anything the fast checks do not take is handed to :meth:`Envelope.parse`, so the result
    (value or :class:`InvalidMessageError` / :class:`UnknownSchemaError`) is the model's."""
    fast = _fast_envelope(raw, accepted)
    return fast if fast is not None else Envelope.parse(raw, accepted)


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
        return (
            self.tenant,
            self.learner_key,
            self.competency,
            self.framework,
            self.framework_version,
            self.mastery,
            self.mastered,
            self.attempts,
            self.correct_total,
            self.correct_streak,
            self.wrong_streak,
            self.hints,
            self.time_on_task_s,
            self.first_event_at,
            self.last_event_at,
            self.mastered_at,
        )


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
    payload: dict[str, Any]  # exactly ``ProgressUpdate(**payload).model_dump(mode="json")``
    value: bytes  # the envelope, as JSON (shared.envelope.Envelope parses it)

    @property
    def update(self) -> ProgressUpdate:
        """The payload as its model (validated: for tests and tools, not the hot path)."""
        return ProgressUpdate.model_validate(self.payload)


def encode_update(env: EnvelopeView, event_id: uuid.UUID, payload: Mapping[str, Any]) -> bytes:
    """The ``skillstream.progress_update.v1`` envelope of ``payload``, encoded directly: the
    payload is built with the model's fields, order and JSON types (:func:`_payload`; a unit
    test checks it against the model) and the other fields come from a checked envelope, so
    validating them again (``Envelope.new``) would only cost time on the hot path."""
    return orjson.dumps(
        {
            "schema": PROGRESS_UPDATE_V1,
            "event_id": event_id,
            "tenant": env.tenant,
            "learner_key": env.learner_key,
            "occurred_at": env.occurred_at,
            "recorded_at": env.recorded_at,
            "payload": payload,
        }
    )


def _payload(
    statement_id: uuid.UUID | str,
    evidence: EvidenceKind,
    *,
    competency: str | None = None,
    framework: str | None = None,
    framework_version: int | None = None,
    programme: str | None = None,
    business_unit: str | None = None,
    mode: str | None = None,
    session_id: str | None = None,
    correct: bool | None = None,
    duration_s: float | None = None,
    predicted_correct: float | None = None,
    mastery_before: float | None = None,
    mastery_after: float | None = None,
    mastered: bool = False,
    attempts: int = 0,
    correct_total: int = 0,
    correct_streak: int = 0,
    wrong_streak: int = 0,
    hints: int = 0,
    time_on_task_s: float = 0.0,
) -> dict[str, Any]:
    """A :class:`ProgressUpdate` as ``model_dump(mode="json")`` gives it (fields in the model's
    order; orjson writes the uuid as pydantic does), built without the model."""
    return {
        "statement_id": statement_id,
        "evidence": evidence,
        "competency": competency,
        "framework": framework,
        "framework_version": framework_version,
        "programme": programme,
        "business_unit": business_unit,
        "mode": mode,
        "session_id": session_id,
        "correct": correct,
        "duration_s": duration_s,
        "predicted_correct": predicted_correct,
        "mastery_before": mastery_before,
        "mastery_after": mastery_after,
        "mastered": mastered,
        "attempts": attempts,
        "correct_total": correct_total,
        "correct_streak": correct_streak,
        "wrong_streak": wrong_streak,
        "hints": hints,
        "time_on_task_s": time_on_task_s,
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    record: LearnerRecord
    duplicate: bool
    evidence: EvidenceKind
    updates: tuple[UpdateOut, ...]
    competencies: tuple[CompetencyRow, ...]
    daily: tuple[DailyRow, ...]
    activity: ActivityRow


def statement_of(env: EnvelopeView) -> dict[str, Any]:
    statement = env.payload.get("statement")
    if not isinstance(statement, dict):
        raise StatementEvidenceError("payload.statement is not a JSON object")
    return statement


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _statement_id(statement: dict[str, Any], fallback: uuid.UUID) -> uuid.UUID | str:
    """The statement's id for the payload: as given when it is already in the canonical form
    (``str(uuid.UUID(sid)) == sid``: the same JSON), else parsed; else ``fallback``."""
    sid = statement.get("id")
    if isinstance(sid, str):
        if _CANONICAL_UUID.fullmatch(sid) is not None:
            return sid
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
) -> tuple[CompetencyState, float | None, float]:
    """The competency state after one piece of evidence, the prediction before it and the
    mastery after it."""
    state = _fit(cs.model, model)
    prediction: float | None = None
    hints = cs.hints
    if kind == "attempt" and correct is not None:
        prediction = model.predict(state)  # type: ignore[arg-type]
        state = model.update(state, correct, weight, at=when, duration_s=duration)  # type: ignore[arg-type]
    else:
        state = record_activity(state, when, duration)  # type: ignore[type-var]
        hints += 1 if kind == "hint" else 0
    mastery: float = model.mastery(state)  # type: ignore[arg-type]
    mastered_at = cs.mastered_at
    if mastered_at is None and mastery >= model.threshold:
        mastered_at = when
    first = when if cs.first_event_at is None else min(cs.first_event_at, when)
    return CompetencyState(state, hints, first, mastered_at), prediction, mastery


class Processor:
    """Applies statements to learner records under the frameworks of a registry."""

    def __init__(self, registry: FrameworkRegistry, recent_ids: int = 64) -> None:
        self.registry = registry
        self.recent_ids = recent_ids

    def process(
        self, env: EnvelopeView, record: LearnerRecord, *, applied: bool = False
    ) -> Outcome:
        # ``applied``: the caller knows ``record`` already holds this statement (a redelivery at
        # or below the record's source offset); else the ring of recent ids tells
        statement = statement_of(env)
        when = env.occurred_at
        version = self.registry.at(env.tenant, when)
        duplicate = applied or record.seen(env.event_id)
        statement_id = _statement_id(statement, env.event_id)
        if version is None:
            if not duplicate:
                record = record.remember(env.event_id, when, self.recent_ids)
            payload = _payload(statement_id, "activity", duration_s=_duration(statement))
            return self._outcome(env, record, duplicate, "activity", [(None, payload)], [], None)
        try:
            evidence = extract_raw(statement, version.index, event_time=when)
        except EvidenceError as exc:  # cannot happen with a default time; kept as a guard
            raise StatementEvidenceError(str(exc)) from None
        duration = evidence.duration_s
        membership = version.members.get(env.learner_key)
        fw = version.framework
        programme = membership.programme if membership else evidence.programme_id
        if evidence.programme_id is not None:
            programme = evidence.programme_id
        base: dict[str, Any] = {
            "framework": fw.framework,
            "framework_version": fw.version,
            "programme": programme,
            "business_unit": membership.business_unit if membership else None,
            "mode": evidence.mode,
            "session_id": evidence.session_id,
            "duration_s": duration,
        }
        kind: EvidenceKind = evidence.kind
        if not evidence.competencies:
            if not duplicate:
                record = record.remember(env.event_id, when, self.recent_ids)
            payload = _payload(statement_id, kind, **base)
            return self._outcome(env, record, duplicate, kind, [(None, payload)], [], version)
        comps = dict(record.competencies)
        pairs: list[tuple[str | None, dict[str, Any]]] = []
        touched: list[tuple[str, float]] = []  # (competency, mastery after)
        correct = evidence.correct if kind == "attempt" else None
        mode, session_id = evidence.mode, evidence.session_id
        framework, framework_version = fw.framework, fw.version
        business_unit = membership.business_unit if membership else None
        for cid, weight in evidence.competencies:
            model = version.models[cid]
            current = comps.get(cid) or CompetencyState(model.initial())
            before: float | None = None
            prediction: float | None = None
            if duplicate:
                new = current
                after: float = model.mastery(_fit(new.model, model))  # type: ignore[arg-type]
            else:
                before = model.mastery(_fit(current.model, model))  # type: ignore[arg-type]
                new, prediction, after = _step(
                    current,
                    model=model,
                    kind=kind,
                    correct=evidence.correct,
                    weight=weight,
                    when=when,
                    duration=duration or 0.0,
                )
                comps[cid] = new
            state = new.model
            touched.append((cid, after))
            # a ProgressUpdate as _payload builds it (fields in the model's order), built inline:
            # this runs per event and competency
            payload = {
                "statement_id": statement_id,
                "evidence": kind,
                "competency": cid,
                "framework": framework,
                "framework_version": framework_version,
                "programme": programme,
                "business_unit": business_unit,
                "mode": mode,
                "session_id": session_id,
                "correct": correct,
                "duration_s": duration,
                "predicted_correct": prediction,
                "mastery_before": before,
                "mastery_after": after,
                "mastered": after >= model.threshold,
                "attempts": state.attempts,
                "correct_total": state.correct,
                "correct_streak": state.correct_streak,
                "wrong_streak": state.wrong_streak,
                "hints": new.hints,
                "time_on_task_s": state.time_on_task_s,
            }
            pairs.append((cid, payload))
        if not duplicate:
            record = record.remember(env.event_id, when, self.recent_ids).with_competencies(comps)
        return self._outcome(env, record, duplicate, kind, pairs, touched, version)

    def _outcome(  # noqa: PLR0917 - private, called positionally from three places
        self,
        env: EnvelopeView,
        record: LearnerRecord,
        duplicate: bool,
        kind: EvidenceKind,
        pairs: list[tuple[str | None, dict[str, Any]]],
        touched: list[tuple[str, float]],
        version: FrameworkVersion | None,
    ) -> Outcome:
        updates = []
        for cid, payload in pairs:
            event_id = update_event_id(env.event_id, cid)
            updates.append(UpdateOut(event_id, payload, encode_update(env, event_id, payload)))
        rows: list[CompetencyRow] = []
        daily: list[DailyRow] = []
        day = env.occurred_at.date()
        if version is not None:
            fw = version.framework
            for cid, mastery in touched:
                cs = record.competencies.get(cid)
                if cs is None:  # a redelivery whose first pass predates this competency
                    continue
                model = version.models[cid]
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
        activity = ActivityRow(
            env.tenant,
            env.learner_key,
            record.events,
            first,
            last,
            day - timedelta(days=day.weekday()),
        )
        return Outcome(record, duplicate, kind, tuple(updates), tuple(rows), tuple(daily), activity)
