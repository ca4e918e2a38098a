"""Evidence extraction: mapping rules, attempts, hints, completion, attendance, durations, time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.progress.durations import cached_duration, general_duration, parse_duration
from services.progress.evidence import (
    HINT_EXTENSION,
    HINT_VERB,
    MODE_EXTENSION,
    EvidenceError,
    extract_evidence,
)
from services.progress.mapping import FrameworkIndex
from shared.framework import Framework

LMS = "https://lms.example.com"
Q1 = f"{LMS}/activities/py-101/q1"
COURSE = f"{LMS}/courses/py-101"
MODULE = f"{LMS}/modules/sql"
SKILL = "https://skillstream.io/xapi/ext/skill"
INTERACTION = "http://adlnet.gov/expapi/activities/cmi.interaction"
ASSESSMENT = "http://adlnet.gov/expapi/activities/assessment"
SESSION = "https://vc.example.com/sessions/1"
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
ATTENDED = "http://adlnet.gov/expapi/verbs/attended"

FRAMEWORK = Framework.model_validate(
    {
        "tenant": "acme",
        "framework": "ds",
        "version": 1,
        "effective_from": "2026-01-01T00:00:00Z",
        "competencies": [
            {"id": "py.basics", "name": "Python basics"},
            {"id": "py.loops", "name": "Loops"},
            {"id": "sql", "name": "SQL"},
            {"id": "stats", "name": "Statistics"},
        ],
        "mappings": [
            {"match": {"activity_id": Q1}, "competency": "py.basics", "weight": 1.0},
            {"match": {"activity_id": Q1}, "competency": "py.loops", "weight": 0.5},
            {"match": {"activity_type": INTERACTION}, "competency": "py.loops", "weight": 0.25},
            {"match": {"context_parent": COURSE}, "competency": "py.basics", "weight": 0.3},
            {"match": {"context_parent": MODULE}, "competency": "sql", "weight": 0.8},
            {"match": {"extension": {"key": SKILL, "value": "stats"}}, "competency": "stats"},
            {"match": {"extension": {"key": SKILL, "value": 3}}, "competency": "sql"},
        ],
        "programmes": [
            {
                "id": "ds-2026",
                "name": "DS",
                "business_unit": "retail",
                "start": "2026-02-01",
                "end": "2026-06-30",
                "competencies": ["py.basics"],
                "sessions": [
                    {
                        "id": "s1",
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


def statement(**parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "0b7ee0a5-3f6c-4c6a-9f1e-54a1b8a5c001",
        "actor": {"account": {"homePage": LMS, "name": "ab12"}},
        "verb": {"id": ANSWERED},
        "object": {"id": f"{LMS}/activities/other", "objectType": "Activity"},
        "timestamp": "2026-02-03T09:15:00+01:00",
    }
    base.update(parts)
    return base


def weights(st_: dict[str, Any]) -> dict[str, float]:
    ev = extract_evidence(st_, INDEX)
    return {c.competency: c.weight for c in ev.competencies}


def test_activity_id_rules_collect_every_competency() -> None:
    assert weights(statement(object={"id": Q1})) == {"py.basics": 1.0, "py.loops": 0.5}


def test_max_weight_wins_across_rules() -> None:
    st_ = statement(
        object={"id": Q1, "definition": {"type": INTERACTION}},
        context={"contextActivities": {"parent": [{"id": COURSE}]}},
    )
    assert weights(st_) == {"py.basics": 1.0, "py.loops": 0.5}


def test_activity_type_rule() -> None:
    st_ = statement(object={"id": f"{LMS}/x", "definition": {"type": INTERACTION}})
    assert weights(st_) == {"py.loops": 0.25}


@pytest.mark.parametrize(
    "activities",
    [
        {"parent": [{"id": MODULE}]},
        {"parent": {"id": MODULE}},  # a single object (xAPI 1.0 allows it)
        {"grouping": [{"id": f"{LMS}/else"}, {"id": MODULE}]},
    ],
)
def test_context_parent_and_grouping_rules(activities: dict[str, Any]) -> None:
    assert weights(statement(context={"contextActivities": activities})) == {"sql": 0.8}


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("object", "stats", {"stats": 1.0}),
        ("result", "stats", {"stats": 1.0}),
        ("context", "stats", {"stats": 1.0}),
        ("context", ["python", "stats"], {"stats": 1.0}),
        ("context", 3, {"sql": 1.0}),
        ("context", 3.0, {"sql": 1.0}),
        ("context", "3", {}),
        ("context", "python", {}),
    ],
)
def test_extension_rules(where: str, value: Any, expected: dict[str, float]) -> None:
    ext = {"extensions": {SKILL: value}}
    if where == "object":
        st_ = statement(object={"id": f"{LMS}/x", "definition": ext})
    else:
        st_ = statement(**{where: ext})
    assert weights(st_) == expected


def test_boolean_extension_values_do_not_equal_numbers() -> None:
    assert weights(statement(context={"extensions": {SKILL: True}})) == {}


def test_agent_objects_do_not_match_activity_ids() -> None:
    st_ = statement(object={"objectType": "Agent", "id": Q1, "mbox": "mailto:x@example.com"})
    assert weights(st_) == {}


@pytest.mark.parametrize(
    ("result", "correct", "score"),
    [
        ({"success": True}, True, None),
        ({"success": False, "score": {"scaled": 0.9}}, False, 0.9),  # success wins
        ({"score": {"scaled": 0.5}}, True, 0.5),
        ({"score": {"scaled": 0.49}}, False, 0.49),
        ({"score": {"raw": 7, "min": 0, "max": 10}}, True, 0.7),
        ({"score": {"raw": 2, "min": 0, "max": 10}}, False, 0.2),
    ],
)
def test_attempts(result: dict[str, Any], correct: bool, score: float | None) -> None:
    ev = extract_evidence(statement(object={"id": Q1}, result=result), INDEX)
    assert ev.kind == "attempt"
    assert ev.correct is correct
    assert ev.score == (None if score is None else pytest.approx(score))
    assert ev.mode == "practice"


@pytest.mark.parametrize(
    "result",
    [{}, {"score": {"raw": 7}}, {"score": {"raw": 7, "min": 10, "max": 10}}, {"response": "x"}],
)
def test_results_without_outcome_are_not_attempts(result: dict[str, Any]) -> None:
    ev = extract_evidence(statement(object={"id": Q1}, result=result), INDEX)
    assert ev.kind == "activity"
    assert ev.correct is None


def test_assessment_mode_from_type_parent_type_or_extension() -> None:
    typed = statement(object={"id": Q1, "definition": {"type": ASSESSMENT}}, result={"success": 1})
    assert extract_evidence(typed, INDEX).kind == "activity"  # success 1 is not a boolean
    typed["result"] = {"success": True}
    assert extract_evidence(typed, INDEX).mode == "assessment"
    parent = {"parent": [{"id": COURSE, "definition": {"type": ASSESSMENT}}]}
    in_exam = statement(object={"id": Q1}, result={"success": True})
    in_exam["context"] = {"contextActivities": parent}
    assert extract_evidence(in_exam, INDEX).mode == "assessment"
    in_exam["context"]["extensions"] = {MODE_EXTENSION: "practice"}
    assert extract_evidence(in_exam, INDEX).mode == "practice"


def test_hints_by_verb_or_extension() -> None:
    by_verb = extract_evidence(statement(object={"id": Q1}, verb={"id": HINT_VERB}), INDEX)
    assert (by_verb.kind, by_verb.hint_used) == ("hint", True)
    ext = {"extensions": {HINT_EXTENSION: 2}}
    attempt = extract_evidence(statement(object={"id": Q1}, result={"success": True, **ext}), INDEX)
    assert (attempt.kind, attempt.hint_used, attempt.correct) == ("attempt", True, True)
    none = extract_evidence(
        statement(object={"id": Q1}, context={"extensions": {HINT_EXTENSION: 0}}), INDEX
    )
    assert none.hint_used is False


def test_completion() -> None:
    by_verb = statement(object={"id": Q1}, verb={"id": "http://adlnet.gov/expapi/verbs/completed"})
    assert extract_evidence(by_verb, INDEX).kind == "completion"
    by_result = statement(object={"id": Q1}, result={"completion": True})
    ev = extract_evidence(by_result, INDEX)
    assert (ev.kind, ev.completed) == ("completion", True)


@pytest.mark.parametrize(
    "verb", [ATTENDED, "http://activitystrea.ms/schema/1.0/join", "https://example.com/v/joined/"]
)
def test_attendance_of_a_programme_session(verb: str) -> None:
    ev = extract_evidence(statement(verb={"id": verb}, object={"id": SESSION}), INDEX)
    assert ev.kind == "attendance"
    assert (ev.programme_id, ev.session_id) == ("ds-2026", "s1")
    assert ev.competencies == ()


def test_other_verbs_on_a_session_or_attended_elsewhere_are_not_attendance() -> None:
    left = statement(
        verb={"id": "http://activitystrea.ms/schema/1.0/leave"}, object={"id": SESSION}
    )
    assert extract_evidence(left, INDEX).kind == "activity"
    rejoined = statement(verb={"id": "https://example.com/v/rejoined"}, object={"id": SESSION})
    assert extract_evidence(rejoined, INDEX).kind == "activity"
    elsewhere = statement(verb={"id": ATTENDED}, object={"id": f"{LMS}/meetup"})
    ev = extract_evidence(elsewhere, INDEX)
    assert (ev.kind, ev.programme_id) == ("activity", None)


def test_unmapped_statement_is_activity_evidence_with_time_and_duration() -> None:
    ev = extract_evidence(statement(result={"success": True, "duration": "PT1M30S"}), FRAMEWORK)
    assert ev.kind == "activity"
    assert ev.competencies == ()
    assert ev.correct is True  # kept, though it moves no mastery
    assert ev.duration_s == 90.0
    assert ev.occurred_at == datetime(2026, 2, 3, 8, 15, tzinfo=UTC)
    assert ev.statement_id == "0b7ee0a5-3f6c-4c6a-9f1e-54a1b8a5c001"
    assert ev.verb_id == ANSWERED


def test_event_time_falls_back_to_stored_then_default() -> None:
    st_ = statement(stored="2026-02-04T00:00:00Z")
    del st_["timestamp"]
    assert extract_evidence(st_, INDEX).occurred_at == datetime(2026, 2, 4, tzinfo=UTC)
    del st_["stored"]
    fallback = datetime(2026, 3, 1, tzinfo=UTC)
    assert extract_evidence(st_, INDEX, default_time=fallback).occurred_at == fallback
    with pytest.raises(EvidenceError):
        extract_evidence(st_, INDEX)


def test_invalid_duration_gives_no_time_on_task() -> None:
    ev = extract_evidence(statement(object={"id": Q1}, result={"duration": "1 hour"}), INDEX)
    assert ev.duration_s is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT42.5S", 42.5),
        ("PT1H12M3S", 4323.0),
        ("P1DT2H", 93600.0),
        ("P2W", 1209600.0),
        ("PT0S", 0.0),
        ("PT1,5M", 90.0),
        ("P1D", 86400.0),
        ("PT1.5H", 5400.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "P1DT", "PT1.5H30M", "P1Y", "P1M", "-PT1S", "PT1S2M", "P1W2D", "pt1s", "PT.5S"],
)
def test_parse_duration_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(
    st.integers(0, 30),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
)
def test_parse_duration_round_trips(d: int, h: int, m: int, s: int, ms: int) -> None:
    text = f"P{d}DT{h}H{m}M{s}.{ms:03d}S"
    assert parse_duration(text) == pytest.approx(d * 86400 + h * 3600 + m * 60 + s + ms / 1000)


@given(
    st.from_regex(r"PT[0-9]{1,7}([.,][0-9]{1,4})?S", fullmatch=True)
    | st.from_regex(r"P[0-9T.,HMSDW]{0,9}", fullmatch=True)
    | st.text(alphabet="PT0123456789.,S\n", max_size=10)
)
def test_seconds_only_reads_as_the_general_rule(text: str) -> None:
    """The seconds-only shortcut gives exactly the general rule's value (same float, not
    approximately), and whatever it does not take goes by the general rule, errors included."""
    try:
        expected: float | None = general_duration(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)
        assert cached_duration(text) is None
    else:
        assert parse_duration(text) == expected
        assert cached_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT22.16S", 22.16), ("PT0S", 0.0), ("PT1,5S", 1.5), ("PT5S\n", 5.0), ("PT007.50S", 7.5)],
)
def test_seconds_only_values(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds == general_duration(text)
