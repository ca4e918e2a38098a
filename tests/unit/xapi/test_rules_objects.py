"""Rule tests for the object of a statement: its objectType, activity ids, StatementRefs
and voiding, statement ids, SubStatements (forbidden properties, nesting), and activity
definitions with their interaction types, components and correct-response patterns,
language maps and moreInfo IRIs. Each case breaks one rule of a valid statement and
expects that rule at its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.xapi.rule_cases import AGENT_B, V1, rule_test
from tests.unit.xapi.samples import ANSWERED, DEL, SUBSTATEMENT, VOIDING

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
    # --- objects -----------------------------------------------------------------------------
    pytest.param(
        ANSWERED,
        ("object",),
        dict(AGENT_B),
        V1,
        "$.object.objectType",
        "object.object_type",
        id="agent-object-without-object-type",
    ),
    pytest.param(
        ANSWERED,
        ("object", "objectType"),
        "Thing",
        V1,
        "$.object",
        "object_type",
        id="object-bad-object-type",
    ),
    pytest.param(
        ANSWERED,
        ("object", "id"),
        "question 3",
        V1,
        "$.object.id",
        "iri.scheme",
        id="activity-id-not-iri",
    ),
    pytest.param(
        VOIDING,
        ("object", "id"),
        "6690e6c93ef04ed38b377f3964730bee",
        V1,
        "$.object.id",
        "uuid.canonical",
        id="statementref-uuid",
    ),
    pytest.param(
        VOIDING,
        ("object",),
        {"id": "https://x.org/a"},
        V1,
        "$.object",
        "voided.object",
        id="voided-needs-statementref",
    ),
    pytest.param(
        ANSWERED,
        ("id",),
        "6690E6C9-3EF0-4ED3-8B37-7F3964730BE",
        V1,
        "$.id",
        "uuid.canonical",
        id="statement-id-uuid",
    ),
    pytest.param(
        SUBSTATEMENT,
        ("object", "id"),
        "6690e6c9-3ef0-4ed3-8b37-7f3964730bee",
        V1,
        "$.object.id",
        "substatement.forbidden_property",
        id="substatement-id",
    ),
    pytest.param(
        SUBSTATEMENT,
        ("object", "authority"),
        AGENT_B,
        V1,
        "$.object.authority",
        "substatement.forbidden_property",
        id="substatement-authority",
    ),
    pytest.param(
        SUBSTATEMENT,
        ("object", "version"),
        "1.0.3",
        V1,
        "$.object.version",
        "substatement.forbidden_property",
        id="substatement-version",
    ),
    pytest.param(
        SUBSTATEMENT,
        ("object", "object"),
        dict(SUBSTATEMENT["object"]),
        V1,
        "$.object.object.objectType",
        "substatement.nested",
        id="nested-substatement",
    ),
    pytest.param(
        SUBSTATEMENT,
        ("object", "actor"),
        DEL,
        V1,
        "$.object.actor",
        "required",
        id="substatement-actor",
    ),
    # --- activity definitions / interactions --------------------------------------------------
    pytest.param(
        ANSWERED,
        ("object", "definition", "interactionType"),
        "multiple-choice",
        V1,
        "$.object.definition.interactionType",
        "interaction.type",
        id="itype",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "scale"),
        [{"id": "1"}],
        V1,
        "$.object.definition.scale",
        "interaction.components",
        id="scale-on-choice",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "choices", 2, "id"),
        "o2",
        V1,
        "$.object.definition.choices[2].id",
        "interaction.component_id_unique",
        id="duplicate-choice-id",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "interactionType"),
        DEL,
        V1,
        "$.object.definition.correctResponsesPattern",
        "interaction.components",
        id="components-without-itype",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "correctResponsesPattern"),
        "co2",
        V1,
        "$.object.definition.correctResponsesPattern",
        "type",
        id="crp-not-list",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "correctResponsesPattern", 0),
        2,
        V1,
        "$.object.definition.correctResponsesPattern[0]",
        "type",
        id="crp-item",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "name"),
        {"en_US": "x"},
        V1,
        "$.object.definition.name.en_US",
        "language_tag",
        id="language-map-key",
    ),
    pytest.param(
        ANSWERED,
        ("object", "definition", "moreInfo"),
        "/about",
        V1,
        "$.object.definition.moreInfo",
        "iri.scheme",
        id="more-info-iri",
    ),
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)
