"""Rule tests for the shape of a statement: required properties (actor, verb, object and the
ids inside them), unknown properties (including Python field names), ``null`` where a value
is required, values of the wrong JSON type, the ``version`` property against the version the
statement is parsed under, and documents that are not a JSON object at all."""

from __future__ import annotations

from typing import Any

import pytest

from shared.xapi import StatementValidationError, parse_statement
from tests.unit.xapi.rule_cases import V1, V2, rule_test
from tests.unit.xapi.samples import ANSWERED, DEL

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
    # --- structure: required / unknown / null -------------------------------------------
    pytest.param(ANSWERED, ("actor",), DEL, V1, "$.actor", "required", id="actor-required"),
    pytest.param(ANSWERED, ("verb",), DEL, V1, "$.verb", "required", id="verb-required"),
    pytest.param(ANSWERED, ("object",), DEL, V1, "$.object", "required", id="object-required"),
    pytest.param(ANSWERED, ("verb", "id"), DEL, V1, "$.verb.id", "required", id="verb-id"),
    pytest.param(ANSWERED, ("object", "id"), DEL, V1, "$.object.id", "required", id="act-id"),
    pytest.param(
        ANSWERED,
        ("actor", "account", "name"),
        DEL,
        V1,
        "$.actor.account.name",
        "required",
        id="account-name-required",
    ),
    pytest.param(ANSWERED, ("flavour",), "x", V1, "$.flavour", "unknown_property", id="unknown"),
    pytest.param(
        ANSWERED,
        ("result", "score", "grade"),
        "A",
        V1,
        "$.result.score.grade",
        "unknown_property",
        id="unknown-nested",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "extensions"),
        {"x": 1},
        V1,
        "$.object.definition.extensions.x",
        "iri.scheme",
        id="extension-key-iri",
    ),
    pytest.param(ANSWERED, ("timestamp",), None, V1, "$.timestamp", "null_value", id="null-top"),
    pytest.param(
        ANSWERED,
        ("result", "success"),
        None,
        V1,
        "$.result.success",
        "null_value",
        id="null-bool",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "choices", 1),
        None,
        V1,
        "$.object.definition.choices[1]",
        "null_value",
        id="null-list-item",
    ),
    pytest.param(
        ANSWERED,
        ("verb", "display", "en-US"),
        None,
        V1,
        '$.verb.display["en-US"]',
        "null_value",
        id="null-language-map-value",
    ),
    pytest.param(
        ANSWERED,
        ("actor", "objectType"),
        None,
        V1,
        "$.actor.objectType",
        "null_value",
        id="null-object-type",
    ),
    pytest.param(
        ANSWERED, ("result", "success"), "true", V1, "$.result.success", "type", id="bool-as-string"
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "interaction_type"),
        "choice",
        V1,
        "$.object.definition.interaction_type",
        "unknown_property",
        id="python-field-name-is-unknown",
    ),
    # --- version ----------------------------------------------------------------------------------
    pytest.param(
        ANSWERED, ("version",), "2.0.0", V1, "$.version", "version", id="version-2-under-1.0.3"
    ),
    pytest.param(ANSWERED, ("version",), "1.1.0", V2, "$.version", "version", id="version-1.1"),
    pytest.param(ANSWERED, ("version",), "1", V2, "$.version", "version", id="version-short"),
    pytest.param(ANSWERED, ("version",), "2.0", V1, "$.version", "version", id="version-2.0-v1"),
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b'{"actor": ', "json.invalid"),
        ("[1, 2]", "type"),
        (b"null", "null_value"),
        ('"statement"', "type"),
    ],
)
def test_top_level_shape(raw: bytes | str, rule: str) -> None:
    with pytest.raises(StatementValidationError) as caught:
        parse_statement(raw, version=V1)
    assert [(v.path, v.rule) for v in caught.value.violations] == [("$", rule)]
