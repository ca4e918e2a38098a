"""Which statements are attempts: real-looking xAPI statements (ADL verbs, as LMSs send them),
classified by the extractor, applied by the processor, and read by the alerts detectors.

Only attempts move mastery and the attempt counters and streaks; a ``completed`` (or a
``passed`` / ``failed`` course or module) with a score is a completion, not one more attempt.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.alerts.detectors import evaluate
from services.alerts.rules import DetectorSettings
from services.alerts.state import LearnerState
from services.ingest.handlers import authority_for, prepare
from services.progress.evidence import extract_evidence
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.mapping import FrameworkIndex
from services.progress.state import LearnerRecord
from shared.envelope import PROGRESS_UPDATE_V1, STATEMENT_V1, Envelope
from shared.events import ProgressUpdate
from shared.framework import Framework
from shared.xapi import XapiVersion, parse_statement

ADL = "http://adlnet.gov/expapi/verbs/"
TYPE = "http://adlnet.gov/expapi/activities/"
LMS = "https://lms.example.com"
COURSE = f"{LMS}/courses/sql-101"
MODULE = f"{LMS}/courses/sql-101/modules/joins"
ITEM = f"{MODULE}/items/q3"
QUIZ = f"{MODULE}/quiz"
SESSION = "https://vc.example.com/rooms/sql-101/2026-02-03"
EXT = "https://skillstream.io/xapi/ext/"
SALT = "unit-test-salt"
T0 = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)

FRAMEWORK = Framework.model_validate(
    {
        "tenant": "acme",
        "framework": "data",
        "version": 1,
        "effective_from": "2026-01-01T00:00:00Z",
        "competencies": [{"id": "sql.joins", "name": "SQL joins"}],
        "mappings": [  # as the simulator's academy maps its modules
            {"match": {"context_parent": MODULE}, "competency": "sql.joins"},
            {"match": {"activity_id": MODULE}, "competency": "sql.joins", "weight": 0.5},
        ],
        "programmes": [
            {
                "id": "data-2026",
                "name": "Data 2026",
                "business_unit": "retail",
                "start": "2026-02-01",
                "end": "2026-06-30",
                "competencies": ["sql.joins"],
                "cohorts": [{"id": "a", "learners": [f"account:{LMS}|u-00042"]}],
                "sessions": [
                    {
                        "id": "live-1",
                        "activity_id": SESSION,
                        "start": "2026-02-03T09:00:00Z",
                        "end": "2026-02-03T10:00:00Z",
                    }
                ],
            }
        ],
    }
)
INDEX = FrameworkIndex.of(FRAMEWORK)


def _activity(activity_id: str, kind: str, name: str) -> dict[str, Any]:
    return {
        "objectType": "Activity",
        "id": activity_id,
        "definition": {"type": TYPE + kind, "name": {"en-US": name}},
    }


def xapi(
    verb: str,
    obj: dict[str, Any],
    *,
    result: dict[str, Any] | None = None,
    parent: dict[str, Any] | None = None,
    at: datetime = T0,
) -> dict[str, Any]:
    """A statement as an LMS sends it (xAPI 2.0, account actor, ADL verb and activity types)."""
    statement: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": {
            "objectType": "Agent",
            "name": "Ines Okafor",
            "account": {"homePage": LMS, "name": "u-00042"},
        },
        "verb": {"id": ADL + verb, "display": {"en-US": verb}},
        "object": obj,
        "context": {
            "registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
            "contextActivities": {
                "parent": [parent or _activity(MODULE, "module", "Joins")],
                "grouping": [_activity(COURSE, "course", "SQL 101")],
            },
            "platform": "Moodle 4.3",
            "language": "en-US",
        },
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }
    if result is not None:
        statement["result"] = result
    return statement


ITEM_OBJ = {
    "objectType": "Activity",
    "id": ITEM,
    "definition": {
        "type": TYPE + "cmi.interaction",
        "interactionType": "choice",
        "name": {"en-US": "Which join keeps unmatched rows of the left table?"},
        "correctResponsesPattern": ["b"],
        "choices": [{"id": c, "description": {"en-US": c.upper()}} for c in "abcd"],
    },
}
ANSWERED_WRONG = xapi(
    "answered",
    ITEM_OBJ,
    result={
        "success": False,
        "score": {"scaled": 0.0, "raw": 0, "min": 0, "max": 1},
        "completion": True,
        "response": "a",
        "duration": "PT42.5S",
    },
)
QUIZ_ATTEMPTED = xapi(
    "attempted",
    _activity(QUIZ, "assessment", "Joins quiz"),
    result={"score": {"raw": 7, "min": 0, "max": 10}, "duration": "PT6M"},
)
QUIZ_PASSED = xapi(
    "passed",
    _activity(QUIZ, "assessment", "Joins quiz"),
    result={"success": True, "score": {"scaled": 0.9}},
)
MODULE_COMPLETED = xapi(  # the practice set finished, with its score: not one more attempt
    "completed",
    _activity(MODULE, "module", "Joins"),
    result={
        "success": False,
        "completion": True,
        "score": {"scaled": 0.375, "raw": 3, "min": 0, "max": 8},
        "duration": "PT12M30S",
    },
    parent=_activity(COURSE, "course", "SQL 101"),
)
MODULE_FAILED = xapi(
    "failed",
    _activity(MODULE, "module", "Joins"),
    result={"success": False, "score": {"scaled": 0.2}},
    parent=_activity(COURSE, "course", "SQL 101"),
)
MODULE_PROGRESSED = xapi(
    "progressed",
    _activity(MODULE, "module", "Joins"),
    result={
        "score": {"scaled": 0.6},
        "extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": 60},
    },
    parent=_activity(COURSE, "course", "SQL 101"),
)
ATTENDED = xapi(
    "attended",
    _activity(SESSION, "meeting", "Live class: joins"),
    result={"completion": True, "duration": "PT55M"},
)
HINT = xapi("asked", ITEM_OBJ, result={"extensions": {EXT + "hint": 1}})  # the simulator's
EXPERIENCED = xapi("experienced", _activity(f"{MODULE}/video", "media", "Joins explained"))


@pytest.mark.parametrize(
    ("statement", "kind", "correct", "mode"),
    [
        (ANSWERED_WRONG, "attempt", False, "practice"),
        (QUIZ_ATTEMPTED, "attempt", True, "assessment"),
        (QUIZ_PASSED, "attempt", True, "assessment"),
        (MODULE_COMPLETED, "completion", False, None),
        (MODULE_FAILED, "completion", False, None),
        (MODULE_PROGRESSED, "activity", True, None),
        (ATTENDED, "attendance", None, None),
        (HINT, "hint", None, None),
        (EXPERIENCED, "activity", None, None),
    ],
    ids=[
        "answered",
        "attempted-quiz",
        "passed-quiz",
        "completed-with-score",
        "failed-module",
        "progressed",
        "attended",
        "hint",
        "experienced",
    ],
)
def test_kind_of_real_statements(
    statement: dict[str, Any], kind: str, correct: bool | None, mode: str | None
) -> None:
    ev = extract_evidence(statement, INDEX)
    assert ev.kind == kind
    assert ev.correct is correct  # the outcome is kept; only an attempt's moves mastery
    assert ev.mode == mode


def test_a_completion_keeps_its_score_duration_and_competencies() -> None:
    ev = extract_evidence(MODULE_COMPLETED, INDEX)
    assert (ev.kind, ev.completed) == ("completion", True)
    assert ev.score == pytest.approx(0.375)
    assert ev.duration_s == 750.0
    assert [(c.competency, c.weight) for c in ev.competencies] == [("sql.joins", 0.5)]


def test_hints_used_before_an_answer_mark_the_attempt() -> None:
    answered = xapi(
        "answered", ITEM_OBJ, result={"success": True, "extensions": {EXT + "hints-used": 2}}
    )
    ev = extract_evidence(answered, INDEX)
    assert (ev.kind, ev.hint_used, ev.correct) == ("attempt", True, True)


def _processor() -> Processor:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([FRAMEWORK])
    return Processor(registry, 16)


def _env(statement: dict[str, Any]) -> Envelope:
    parsed = parse_statement(statement, version=XapiVersion.V2_0)
    ready = prepare(
        parsed,
        tenant="acme",
        version=XapiVersion.V2_0,
        stored=T0 + timedelta(hours=1),
        authority=authority_for("acme", "lms1"),
        salt=SALT,
    )
    return Envelope.parse(ready.envelope, {STATEMENT_V1})


def _at(statement: dict[str, Any], minutes: int) -> dict[str, Any]:
    moved = dict(statement, id=str(uuid.uuid4()))
    moved["timestamp"] = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return moved


def _updates(statements: list[dict[str, Any]]) -> tuple[LearnerRecord, list[ProgressUpdate]]:
    proc, record, updates = _processor(), LearnerRecord(), []
    for statement in statements:
        out = proc.process(_env(statement), record)
        record = out.record
        for u in out.updates:
            Envelope.parse(u.value, {PROGRESS_UPDATE_V1})  # the contract on the topic
            updates.append(u.update)
    return record, updates


def test_completion_with_a_score_moves_no_mastery_but_counts_time_and_recency() -> None:
    record, [attempt, completion] = _updates([ANSWERED_WRONG, _at(MODULE_COMPLETED, 20)])
    assert (attempt.evidence, attempt.attempts, attempt.wrong_streak) == ("attempt", 1, 1)
    assert completion.evidence == "completion"
    assert completion.correct is None
    assert completion.predicted_correct is None
    assert completion.mastery_after == attempt.mastery_after  # no BKT step
    assert (completion.attempts, completion.correct_total) == (1, 0)
    assert completion.wrong_streak == 1  # the completion's success=false is not a failure
    assert completion.time_on_task_s == pytest.approx(42.5 + 750.0)
    state = record.competencies["sql.joins"].model
    assert state.attempts == 1
    assert state.last_event_at == T0 + timedelta(minutes=20)
    assert record.last_event_at == T0 + timedelta(minutes=20)


def test_only_attempts_count_in_the_alerts_detectors() -> None:
    """Five failed module completions in a row are no failure streak; three wrong answers are."""
    settings = DetectorSettings()
    k = settings.failure_streak.k
    completions = [_at(MODULE_FAILED, i) for i in range(2 * k)]
    answers = [_at(ANSWERED_WRONG, 100 + i) for i in range(k)]
    _, updates = _updates(completions + answers)
    state, kinds = LearnerState(), []
    for i, update in enumerate(updates):
        env = Envelope.new(
            PROGRESS_UPDATE_V1,
            tenant="acme",
            learner_key="a" * 32,
            occurred_at=T0 + timedelta(minutes=i),
            recorded_at=T0 + timedelta(minutes=i),
            payload=update.model_dump(mode="json"),
        )
        state, signals = evaluate(state, env, update, settings)
        kinds.append([s.kind for s in signals if s.action == "raise"])
        if i == 2 * k - 1:
            assert state.competencies == {}  # completions touched no attempt state
    assert all(not raised for raised in kinds[: 2 * k])
    assert "failure_streak" in kinds[-1]
    assert state.competencies["sql.joins"].attempts == k
