"""Nulls are refused inside pydantic-core (no per-object Python pass), and the JSON-ready dict
of a statement equals its JSON text decoded."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.xapi import (
    Agent,
    Score,
    StatementValidationError,
    XapiVersion,
    parse_statement,
    parse_statements_profiled,
    statement_to_dict,
    statement_to_json,
)
from shared.xapi.lenient import Profile
from tests.unit.xapi.samples import REALISTIC_1_0_3 as ALL
from tests.unit.xapi.samples import with_value

#: every optional property, at one place in a valid statement, sent as null
OPTIONAL_NULLS = [
    ("answered", ("result",), "$.result"),
    ("answered", ("result", "score", "min"), "$.result.score.min"),
    ("answered", ("result", "duration"), "$.result.duration"),
    ("answered", ("result", "extensions"), "$.result.extensions"),
    ("answered", ("context",), "$.context"),
    ("answered", ("context", "registration"), "$.context.registration"),
    ("answered", ("context", "contextActivities", "parent"), "$.context.contextActivities.parent"),
    ("answered", ("timestamp",), "$.timestamp"),
    ("answered", ("actor", "name"), "$.actor.name"),
    ("answered", ("actor", "objectType"), "$.actor.objectType"),
    ("answered", ("object", "definition"), "$.object.definition"),
    ("answered", ("verb", "display"), "$.verb.display"),
    ("answered", ("version",), "$.version"),
    ("answered", ("authority",), "$.authority"),
    ("answered", ("attachments",), "$.attachments"),
]


@pytest.mark.parametrize(("sample", "path", "where"), OPTIONAL_NULLS)
def test_optional_properties_sent_as_null_are_null_value(
    sample: str, path: tuple[str, ...], where: str
) -> None:
    doc = with_value(ALL[sample], path, None)
    with pytest.raises(StatementValidationError) as caught:
        parse_statement(doc, version=XapiVersion.V2_0)
    assert (where, "null_value") in [(v.path, v.rule) for v in caught.value.violations]
    # the lenient profile repairs exactly these (property omitted, deviation recorded)
    [(_, found)] = parse_statements_profiled(doc, version=XapiVersion.V2_0, profile=Profile.LENIENT)
    assert [(d.rule, d.path) for d in found] == [("property.null", where)]


def test_absent_optional_properties_are_still_none() -> None:
    agent = Agent.model_validate({"mbox": "mailto:a@example.com"})
    assert agent.name is None
    assert agent.object_type is None
    assert Score.model_validate({}).raw is None


def test_python_construction_refuses_null_as_well() -> None:
    with pytest.raises(ValueError, match=r"name"):
        Agent.model_validate({"mbox": "mailto:a@example.com", "name": None})


def _valid_pairs() -> list[tuple[str, XapiVersion]]:
    """(sample, version) for every version a sample is valid in (some are 2.0-only)."""
    pairs = []
    for name in sorted(ALL):
        for version in (XapiVersion.V1_0_3, XapiVersion.V2_0):
            try:
                parse_statement(ALL[name], version=version)
            except StatementValidationError:
                continue
            pairs.append((name, version))
    return pairs


def test_every_sample_is_valid_in_some_version() -> None:
    assert {name for name, _ in _valid_pairs()} == set(ALL)


@pytest.mark.parametrize(("sample", "version"), _valid_pairs())
def test_statement_to_dict_is_the_json_decoded(sample: str, version: XapiVersion) -> None:
    stmt = parse_statement(ALL[sample], version=version)
    as_dict: dict[str, Any] = statement_to_dict(stmt)
    assert as_dict == orjson.loads(statement_to_json(stmt))
    assert orjson.dumps(as_dict) == statement_to_json(stmt)
