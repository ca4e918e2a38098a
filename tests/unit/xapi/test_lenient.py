"""The lenient profile: each documented deviation is repaired and recorded (valid case); the
strict profile rejects it, and lookalikes that are not the deviation stay rejected (invalid)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.xapi import (
    LENIENT_RULES,
    Profile,
    StatementValidationError,
    XapiVersion,
    parse_statements_profiled,
    statement_to_json,
)
from tests.unit.xapi.samples import ANSWERED, with_value, without

V2 = XapiVersion.V2_0
UID = "3FA85F64-5717-4562-B3FC-2C963F66AFA6"


def lenient(doc: Any) -> list[tuple[str, str, Any]]:
    [(_, found)] = parse_statements_profiled(doc, version=V2, profile=Profile.LENIENT)
    return [(d.rule, d.path, d.original) for d in found]


def rejected(doc: Any, profile: Profile = Profile.LENIENT) -> list[str]:
    with pytest.raises(StatementValidationError) as info:
        parse_statements_profiled(doc, version=V2, profile=profile)
    return info.value.rules


REPAIRED = [
    pytest.param(
        with_value(ANSWERED, ("object", "objectType"), "Course"),
        [("activity.object_type", "$.object.objectType", "Course")],
        id="custom-object-type",
    ),
    pytest.param(
        with_value(ANSWERED, ("object", "id"), UID),
        [("activity.id_bare_uuid", "$.object.id", UID)],
        id="bare-uuid-activity-id",
    ),
    pytest.param(
        with_value(ANSWERED, ("result", "score"), {"raw": 5, "min": 5, "max": 5}),
        [("score.min_equals_max", "$.result.score.min", {"min": 5, "max": 5})],
        id="score-min-equals-max",
    ),
    pytest.param(
        with_value(ANSWERED, ("actor",), {"mbox": "ada@example.edu"}),
        [("mbox.missing_mailto", "$.actor.mbox", "ada@example.edu")],
        id="mbox-without-mailto",
    ),
    pytest.param(
        with_value(ANSWERED, ("context",), None),
        [("property.null", "$.context", None)],
        id="null-optional-property",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), REPAIRED)
def test_lenient_repairs_and_records_documented_deviation(
    doc: dict[str, Any], expected: list[tuple[str, str, Any]]
) -> None:
    assert lenient(doc) == expected
    assert {rule for rule, _, _ in expected} <= set(LENIENT_RULES)
    rejected(doc, Profile.STRICT)  # the strict profile refuses it


def test_repaired_statement_is_the_nearest_valid_form() -> None:
    doc = with_value(ANSWERED, ("object", "id"), UID)
    doc = with_value(doc, ("object", "objectType"), "activity")
    [(stmt, found)] = parse_statements_profiled([doc], version=V2, profile=Profile.LENIENT)
    assert stmt.object.id == f"urn:uuid:{UID.lower()}"  # type: ignore[union-attr]
    assert b'"objectType":"Activity"' in statement_to_json(stmt)
    assert [d.path for d in found] == ["$.object.objectType", "$.object.id"]


def test_valid_statements_have_no_deviations() -> None:
    assert lenient(ANSWERED) == []


NOT_REPAIRED = [
    pytest.param(with_value(ANSWERED, ("object", "id"), "not-a-uuid"), "iri.scheme", id="id"),
    pytest.param(with_value(ANSWERED, ("verb", "id"), UID), "iri.scheme", id="uuid-verb-id"),
    pytest.param(
        with_value(ANSWERED, ("result", "score"), {"raw": 4, "min": 5, "max": 5}),
        "score.range",
        id="score-raw-outside",
    ),
    pytest.param(
        with_value(ANSWERED, ("actor",), {"mbox": "no address"}), "mbox.mailto", id="mbox-garbage"
    ),
    pytest.param(with_value(ANSWERED, ("actor",), None), "null_value", id="null-required"),
    pytest.param(
        with_value(without(ANSWERED, ("object", "definition")), ("object", "objectType"), "Agent"),
        "unknown_property",
        id="known-object-type",
    ),
    pytest.param(
        with_value(with_value(ANSWERED, ("object", "objectType"), "Course"), ("actor",), {}),
        "ifi.exactly_one",
        id="deviation-plus-real-error",
    ),
]


@pytest.mark.parametrize(("doc", "rule"), NOT_REPAIRED)
def test_lenient_still_rejects_what_is_not_a_documented_deviation(
    doc: dict[str, Any], rule: str
) -> None:
    assert rule in rejected(doc)


def test_deviations_are_reported_per_statement_of_an_array() -> None:
    bad = with_value(ANSWERED, ("object", "objectType"), "Course")
    good = without(ANSWERED, ("id",))
    result = parse_statements_profiled(
        [good, without(bad, ("id",))], version=V2, profile=Profile.LENIENT
    )
    assert [len(found) for _, found in result] == [0, 1]
