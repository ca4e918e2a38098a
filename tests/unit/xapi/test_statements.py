"""Realistic statements, round-tripping, learner identifiers and batch parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from shared.xapi import (
    Activity,
    Agent,
    Group,
    StatementRef,
    StatementValidationError,
    SubStatement,
    XapiVersion,
    learner_ifi,
    parse_statement,
    parse_statements,
    statement_to_json,
)
from tests.unit.xapi.samples import (
    ANSWERED,
    ATTENDED,
    COMPLETED,
    COURSE,
    QUIZ,
    REALISTIC_1_0_3,
    REGISTRATION,
    V2_CONTEXT_AGENTS,
    with_value,
)

V1 = XapiVersion.V1_0_3
V2 = XapiVersion.V2_0
ALL_SAMPLES = [*REALISTIC_1_0_3.values(), V2_CONTEXT_AGENTS]


def test_answered_choice_question_fields() -> None:
    statement = parse_statement(orjson.dumps(ANSWERED), version=V1)
    assert isinstance(statement.actor, Agent)
    assert learner_ifi(statement.actor) == ("account", "https://lms.example.edu|u-10442")
    assert isinstance(statement.object, Activity)
    definition = statement.object.definition
    assert definition is not None
    assert definition.interaction_type == "choice"
    assert [c.id for c in definition.choices or []] == ["o2", "co2", "n2"]
    assert definition.correct_responses_pattern == ["co2"]
    assert statement.result is not None
    assert statement.result.score is not None
    assert statement.result.score.scaled == 1.0
    assert statement.result.success is True
    assert statement.result.duration == "PT42.5S"
    assert statement.context is not None
    assert statement.context.registration == REGISTRATION
    activities = statement.context.context_activities
    assert activities is not None
    assert [a.id for a in activities.parent or []] == [QUIZ]
    assert [a.id for a in activities.grouping or []] == [COURSE]
    assert statement.timestamp == datetime(2024, 5, 2, 7, 15, 27, 341000, tzinfo=UTC)
    assert statement.timestamp.utcoffset() == timedelta(hours=2)


def test_single_context_activity_is_normalised_to_a_list() -> None:
    statement = parse_statement(COMPLETED, version=V1)
    assert statement.context is not None
    assert statement.context.context_activities is not None
    parent = statement.context.context_activities.parent
    assert parent is not None
    assert [a.id for a in parent] == [COURSE]
    assert json.loads(statement_to_json(statement))["context"]["contextActivities"]["parent"] == [
        {"id": COURSE}
    ]


def test_group_actor_and_team() -> None:
    statement = parse_statement(ATTENDED, version=V1)
    assert isinstance(statement.actor, Group)
    assert statement.actor.is_anonymous
    assert [learner_ifi(m) for m in statement.actor.member or []] == [
        ("account", "https://lms.example.edu|u-1"),
        ("account", "https://lms.example.edu|u-2"),
    ]
    assert statement.context is not None
    assert statement.context.team is not None
    assert learner_ifi(statement.context.team) == ("account", "https://lms.example.edu|group-b")
    # basic-format timestamp with +0100 offset
    assert statement.timestamp == datetime(2024, 5, 3, 13, 0, tzinfo=UTC)


def test_object_kinds() -> None:
    voiding = parse_statement(REALISTIC_1_0_3["voiding"], version=V1)
    assert isinstance(voiding.object, StatementRef)
    sub = parse_statement(REALISTIC_1_0_3["substatement"], version=V1)
    assert isinstance(sub.object, SubStatement)
    assert isinstance(sub.object.object, Activity)
    assert sub.object.object.object_type is None


def test_naive_timestamp_is_read_as_utc() -> None:
    statement = parse_statement(
        with_value(ANSWERED, ("timestamp",), "2024-05-02T09:15:27.5"), version=V2
    )
    assert statement.timestamp == datetime(2024, 5, 2, 9, 15, 27, 500000, tzinfo=UTC)


def test_offset_is_preserved() -> None:
    statement = parse_statement(
        with_value(ANSWERED, ("timestamp",), "2024-05-02T09:15:27-05:30"), version=V1
    )
    assert statement.timestamp is not None
    assert statement.timestamp.tzinfo == timezone(-timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("doc", ALL_SAMPLES, ids=[*REALISTIC_1_0_3, "v2"])
def test_round_trip(doc: dict[str, Any]) -> None:
    first = parse_statement(doc, version=V2)
    encoded = statement_to_json(first)
    again = parse_statement(encoded, version=V2)
    assert again == first
    assert statement_to_json(again) == encoded
    decoded = json.loads(encoded)
    # camelCase aliases on the wire, no nulls except inside extensions
    assert "object" in decoded
    assert "object_type" not in encoded.decode()
    assert b":null" not in encoded.replace(b'"https://lms.example.edu/xapi/ext/note":null', b"")


def test_round_trip_keeps_null_extension_values() -> None:
    encoded = statement_to_json(parse_statement(ANSWERED, version=V1))
    extensions = json.loads(encoded)["context"]["extensions"]
    assert extensions == {
        "https://lms.example.edu/xapi/ext/attempt": 2,
        "https://lms.example.edu/xapi/ext/note": None,
    }


def test_models_are_frozen() -> None:
    statement = parse_statement(ANSWERED, version=V1)
    with pytest.raises(ValueError, match="frozen"):
        statement.version = "1.0.0"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ({"mbox": "mailto:Ada.Lovelace@Example.EDU"}, ("mbox", "mailto:ada.lovelace@example.edu")),
        (
            {"mbox_sha1sum": "EBD31E95054C018B10727CCFFD2EF2EC3A016EE9"},
            ("mbox_sha1sum", "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"),
        ),
        ({"openid": "https://id.example.edu/Ada"}, ("openid", "https://id.example.edu/Ada")),
        (
            {"account": {"homePage": "https://lms.example.edu//", "name": "U-1"}},
            ("account", "https://lms.example.edu|U-1"),
        ),
        (
            {"objectType": "Group", "mbox": "mailto:Team@x.org"},
            ("mbox", "mailto:team@x.org"),
        ),
    ],
)
def test_learner_ifi(actor: dict[str, Any], expected: tuple[str, str]) -> None:
    statement = parse_statement(with_value(ANSWERED, ("actor",), actor), version=V1)
    assert learner_ifi(statement.actor) == expected


def test_learner_ifi_rejects_anonymous_group() -> None:
    statement = parse_statement(ATTENDED, version=V1)
    with pytest.raises(ValueError, match="anonymous"):
        learner_ifi(statement.actor)


def test_parse_statements_single_and_array() -> None:
    assert len(parse_statements(orjson.dumps(ANSWERED), version=V1)) == 1
    batch = parse_statements(orjson.dumps(list(REALISTIC_1_0_3.values())), version=V1)
    assert len(batch) == len(REALISTIC_1_0_3)
    assert parse_statements("[]", version=V1) == []


def test_parse_statements_paths_carry_the_index() -> None:
    docs = [ANSWERED, COMPLETED, with_value(ATTENDED, ("actor", "member", 1, "mbox"), "x@y.z")]
    with pytest.raises(StatementValidationError) as caught:
        parse_statements(docs, version=V1)
    paths = {(v.path, v.rule) for v in caught.value.violations}
    assert ("$[2].actor.member[1].mbox", "mbox.mailto") in paths


def test_parse_statements_rejects_duplicate_ids() -> None:
    other = with_value(COMPLETED, ("id",), ANSWERED["id"].upper())
    with pytest.raises(StatementValidationError) as caught:
        parse_statements([ANSWERED, other], version=V1)
    assert [(v.path, v.rule) for v in caught.value.violations] == [("$[1].id", "id.duplicate")]


def test_parse_statements_rejects_scalar() -> None:
    with pytest.raises(StatementValidationError) as caught:
        parse_statements("42", version=V1)
    assert caught.value.rules == ["type"]


def test_error_is_value_error_and_lists_every_violation() -> None:
    doc = with_value(ANSWERED, ("actor", "mbox_sha1sum"), "nothex")
    doc = with_value(doc, ("result", "duration"), "1h")
    with pytest.raises(ValueError, match=r"duration\.iso8601") as caught:
        parse_statement(doc, version=V1)
    assert isinstance(caught.value, StatementValidationError)
    found = {(v.path, v.rule) for v in caught.value.violations}
    assert ("$.actor.mbox_sha1sum", "mbox_sha1sum.hex") in found
    assert ("$.result.duration", "duration.iso8601") in found
    text = str(caught.value)
    assert "$.result.duration" in text
    assert "ISO 8601 duration" in text


def test_version_must_be_an_enum_member() -> None:
    with pytest.raises(TypeError):
        parse_statement(ANSWERED, version="1.0.3")  # type: ignore[arg-type]
