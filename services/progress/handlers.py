"""The pure logic of the worker: one statement envelope and a learner's state in, the new state,
the ``progress.updates`` envelopes and the projection rows out. No I/O here (the envelopes on
the wire: :mod:`services.progress.wire`).

Idempotency: each ProgressUpdate's ``event_id`` is ``uuid5(statement event id | competency)``,
so publishing again after a crash gives the same ids. A statement whose event id is in the
learner's ring of recent ids (:mod:`services.progress.state`) is a redelivery: the state is left
as it is, and the updates and rows are rebuilt from the current state with the same event ids
(the first delivery may have died before they were published or projected); downstream drops
what it already has by event id, the projection by its offset watermark.

What one statement yields (rows, updates, the outcome): :mod:`services.progress.outcome`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import fields, replace
from datetime import date, timedelta
from typing import Any, Final

from services.progress.durations import cached_duration
from services.progress.errors import StatementEvidenceError
from services.progress.evidence import EvidenceError, RawEvidence, extract_raw
from services.progress.frameworks import FrameworkRegistry, FrameworkVersion
from services.progress.mastery import (
    BktModel,
    EloModel,
    EloState,
    MasteryState,
    add_surprise,
    learner_ability,
    record_activity,
)
from services.progress.outcome import (
    ActivityRow,
    CompetencyRow,
    DailyRow,
    Outcome,
    UpdateOut,
)
from services.progress.outcome import (
    payload as _payload,
)
from services.progress.state import CompetencyState, LearnerRecord
from services.progress.wire import EnvelopeView, encode_update, event_id_of, update_id_text
from shared.events import EvidenceKind

_TALLY_FIELDS: Final = tuple(f.name for f in fields(MasteryState) if f.name != "log_odds")


def statement_of(env: EnvelopeView) -> dict[str, Any]:
    statement = env.payload.get("statement")
    if not isinstance(statement, dict):
        raise StatementEvidenceError("payload.statement is not a JSON object")
    return statement


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _statement_id(statement: dict[str, Any], fallback: str) -> uuid.UUID | str:
    """The statement's id for the payload: as given when it is already in the canonical form
    (``str(uuid.UUID(sid)) == sid``: the same JSON), else parsed; else ``fallback`` (the
    envelope's event id as ``str(uuid)``: the same JSON as the uuid)."""
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
    """``result.duration`` in seconds; None if absent or invalid."""
    result = statement.get("result")
    return cached_duration(result.get("duration")) if isinstance(result, dict) else None


def _fit(state: MasteryState | EloState, model: BktModel | EloModel) -> MasteryState | EloState:
    """``state`` as the model's own state type (a framework may switch BKT <-> Elo): the
    counters carry over, the estimate starts from the model's initial value."""
    if isinstance(model, BktModel) == isinstance(state, MasteryState):
        return state
    initial = model.initial()
    return replace(initial, **{name: getattr(state, name) for name in _TALLY_FIELDS})


#: Monday of a day's week, by day (bounded: emptied when full)
_WEEKS: dict[date, date] = {}


def _week(day: date) -> date:
    week = _WEEKS.get(day)
    if week is None:
        if len(_WEEKS) >= 4096:
            _WEEKS.clear()
        week = _WEEKS[day] = day - timedelta(days=day.weekday())
    return week


def _advance(  # noqa: PLR0917 - private, per event and competency: positional is cheaper
    current: CompetencyState,
    state: MasteryState | EloState,
    model: BktModel | EloModel,
    evidence: RawEvidence,
    weight: float,
    spent: float,
    ability: float,
) -> tuple[CompetencyState, float | None, float]:
    """The competency's state after one piece of evidence (``state``: its model state, fitted
    to ``model``; ``ability``: the learner's), the prediction before it (attempts) and the
    mastery after it."""
    when = evidence.occurred_at
    prediction: float | None = None
    hints = current.hints
    if evidence.kind == "attempt" and evidence.correct is not None:
        state = model.update(
            state,  # type: ignore[arg-type]
            evidence.correct,
            weight,
            at=when,
            duration_s=spent,
            ability=ability,
        )
        # the update keeps the model's prediction before the answer (``model.predict`` of
        # the state it started from)
        prediction = state.last_prediction
    else:
        state = record_activity(state, when, spent)  # type: ignore[type-var]
        hints += 1 if evidence.kind == "hint" else 0
    after: float = model.mastery(state)  # type: ignore[arg-type]
    mastered_at = current.mastered_at
    if mastered_at is None and after >= model.threshold:
        mastered_at = when
    first = current.first_event_at
    first = when if first is None else min(first, when)
    return CompetencyState(state, hints, first, mastered_at), prediction, after


class Processor:
    """Applies statements to learner records under the frameworks of a registry."""

    def __init__(self, registry: FrameworkRegistry, recent_ids: int = 64) -> None:
        self.registry = registry
        self.recent_ids = recent_ids

    def process(
        self,
        env: EnvelopeView,
        record: LearnerRecord,
        *,
        applied: bool = False,
        offset: int | None = None,
    ) -> Outcome:
        """``applied``: the caller knows ``record`` already holds this statement (a redelivery
        at or below the record's source offset); else the ring of recent ids tells.
        ``offset``: the statement's source offset, kept in the new record (default: the
        record's)."""
        statement = statement_of(env)
        when = env.occurred_at
        event_text, event_bytes = event_id_of(env)
        version = self.registry.at(env.tenant, when)
        duplicate = applied or event_bytes in record.recent
        statement_id = _statement_id(statement, event_text)
        if version is None:
            if not duplicate:
                record = record.after(event_bytes, when, self.recent_ids, offset=offset)
            payload = _payload(statement_id, "activity", duration_s=_duration(statement))
            return self._outcome(env, event_text, record, duplicate, "activity", [(None, payload)])
        try:
            evidence = extract_raw(statement, version.index, event_time=when)
        except EvidenceError as exc:  # cannot happen with a default time; kept as a guard
            raise StatementEvidenceError(str(exc)) from None
        membership = version.members.get(env.learner_key)
        programme = membership.programme if membership else evidence.programme_id
        if evidence.programme_id is not None:
            programme = evidence.programme_id
        fw = version.framework
        # the fields between ``competency`` and ``correct`` of each ProgressUpdate
        common: dict[str, Any] = {
            "framework": fw.framework,
            "framework_version": fw.version,
            "programme": programme,
            "business_unit": membership.business_unit if membership else None,
            "mode": evidence.mode,
            "session_id": evidence.session_id,
        }
        kind: EvidenceKind = evidence.kind
        if not evidence.competencies:
            if not duplicate:
                record = record.after(event_bytes, when, self.recent_ids, offset=offset)
            payload = _payload(statement_id, kind, **common, duration_s=evidence.duration_s)
            return self._outcome(env, event_text, record, duplicate, kind, [(None, payload)])
        comps = dict(record.competencies)
        surprise = [record.surprise, record.surprise_weight]
        pairs, rows, daily = self._competencies(
            env,
            evidence,
            version,
            comps,
            common,
            surprise=surprise,
            statement_id=statement_id,
            duplicate=duplicate,
        )
        if not duplicate:
            record = record.after(
                event_bytes,
                when,
                self.recent_ids,
                comps,
                offset,
                surprise=(surprise[0], surprise[1]),
            )
        return self._outcome(env, event_text, record, duplicate, kind, pairs, rows, daily)

    @staticmethod
    def _competencies(
        env: EnvelopeView,
        evidence: RawEvidence,
        version: FrameworkVersion,
        comps: dict[str, CompetencyState],
        common: dict[str, Any],
        *,
        surprise: list[float],
        statement_id: uuid.UUID | str,
        duplicate: bool,
    ) -> tuple[list[tuple[str | None, dict[str, Any]]], list[CompetencyRow], list[DailyRow]]:
        """The updates and rows of each competency of ``evidence``; ``comps`` (the learner's
        states, a copy) takes their new states and ``surprise`` (the learner's surprise and its
        weight, a copy) each attempt's, unless the statement is a ``duplicate``."""
        pairs: list[tuple[str | None, dict[str, Any]]] = []
        rows: list[CompetencyRow] = []
        daily: list[DailyRow] = []
        tenant, learner_key = env.tenant, env.learner_key
        framework, framework_version = common["framework"], common["framework_version"]
        day = evidence.occurred_at.date()
        kind = evidence.kind
        correct = evidence.correct if kind == "attempt" else None
        duration = evidence.duration_s
        spent = duration or 0.0
        models = version.models
        abilities = version.framework.ability
        # the learner's ability before this statement (all its competencies use the same)
        ability = learner_ability(surprise[0], surprise[1], abilities) if abilities else 0.0
        for cid, weight in evidence.competencies:
            model = models[cid]
            held = comps.get(cid)
            current = held or CompetencyState(model.initial(ability))
            state = _fit(current.model, model)
            before: float | None = None
            prediction: float | None = None
            if duplicate:
                new = current
                after: float = model.mastery(state)  # type: ignore[arg-type]
            else:
                before = model.mastery(state)  # type: ignore[arg-type]
                new, prediction, after = _advance(
                    current, state, model, evidence, weight, spent, ability
                )
                held = comps[cid] = new
                if prediction is not None:
                    surprise[:] = add_surprise(
                        surprise[0], surprise[1], bool(correct), prediction, weight
                    )
            m = new.model
            mastered = after >= model.threshold
            # a ProgressUpdate as _payload builds it (fields in the model's order), built inline:
            # this runs per event and competency
            payload = {
                "statement_id": statement_id,
                "evidence": kind,
                "competency": cid,
                **common,
                "correct": correct,
                "duration_s": duration,
                "predicted_correct": prediction,
                "mastery_before": before,
                "mastery_after": after,
                "mastered": mastered,
                "attempts": m.attempts,
                "correct_total": m.correct,
                "correct_streak": m.correct_streak,
                "wrong_streak": m.wrong_streak,
                "hints": new.hints,
                "time_on_task_s": m.time_on_task_s,
            }
            pairs.append((cid, payload))
            if held is None:  # a redelivery whose first pass predates this competency: no row
                continue
            m = held.model
            rows.append(
                CompetencyRow(
                    tenant,
                    learner_key,
                    cid,
                    framework,
                    framework_version,
                    after,
                    mastered,
                    m.attempts,
                    m.correct,
                    m.correct_streak,
                    m.wrong_streak,
                    held.hints,
                    m.time_on_task_s,
                    held.first_event_at,
                    m.last_event_at,
                    held.mastered_at,
                )
            )
            daily.append(DailyRow(tenant, learner_key, cid, day, after))
        return pairs, rows, daily

    def _outcome(  # noqa: PLR0917 - private, called positionally from three places
        self,
        env: EnvelopeView,
        event_text: str,
        record: LearnerRecord,
        duplicate: bool,
        kind: EvidenceKind,
        pairs: list[tuple[str | None, dict[str, Any]]],
        rows: list[CompetencyRow] | None = None,
        daily: list[DailyRow] | None = None,
    ) -> Outcome:
        updates = []
        for cid, payload in pairs:
            event_id = update_id_text(event_text, cid)
            updates.append(UpdateOut(event_id, payload, encode_update(env, event_id, payload)))
        when = env.occurred_at
        activity = ActivityRow(
            env.tenant,
            env.learner_key,
            record.events,
            record.first_event_at or when,
            record.last_event_at or when,
            _week(when.date()),
        )
        return Outcome(
            record,
            duplicate,
            kind,
            tuple(updates),
            tuple(rows) if rows else (),
            tuple(daily) if daily else (),
            activity,
        )
