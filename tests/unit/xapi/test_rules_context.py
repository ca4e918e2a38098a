"""Rule tests for the context of a statement: registration and language, the properties
only allowed when the object is an activity, context activities (parent, grouping, the
allowed keys), and the 2.0 contextAgents and contextGroups (only under 2.0, their types
and relevantTypes). Each case breaks one rule of a valid statement and expects that rule
at its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.xapi.rule_cases import AGENT_B, V1, V2, rule_test
from tests.unit.xapi.samples import (
    ANSWERED,
    COMPLETED,
    DEL,
    LEARNER,
    SUBSTATEMENT,
    V2_CONTEXT_AGENTS,
    VOIDING,
    with_value,
    without,
)

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
    # --- context --------------------------------------------------------------------------------
    pytest.param(
        ANSWERED,
        ("context", "registration"),
        "reg-1",
        V1,
        "$.context.registration",
        "uuid.canonical",
        id="registration-uuid",
    ),
    pytest.param(
        ANSWERED,
        ("context", "language"),
        "en_US",
        V1,
        "$.context.language",
        "language_tag",
        id="context-language",
    ),
    pytest.param(
        VOIDING,
        ("context",),
        {"platform": "Moodle"},
        V1,
        "$.context.platform",
        "context.activity_only",
        id="platform-needs-activity",
    ),
    pytest.param(
        with_value(SUBSTATEMENT, ("object", "context", "revision"), "3"),
        ("object", "object"),
        {"objectType": "Agent", **AGENT_B},
        V1,
        "$.object.context.revision",
        "context.activity_only",
        id="revision-in-substatement",
    ),
    pytest.param(
        ANSWERED,
        ("context", "contextActivities", "parent", 0, "id"),
        "quiz",
        V1,
        "$.context.contextActivities.parent[0].id",
        "iri.scheme",
        id="parent-id",
    ),
    pytest.param(
        ANSWERED,
        ("context", "contextActivities", "grouping"),
        "course",
        V1,
        "$.context.contextActivities.grouping",
        "type",
        id="grouping-string",
    ),
    pytest.param(
        ANSWERED,
        ("context", "contextActivities", "sibling"),
        [],
        V1,
        "$.context.contextActivities.sibling",
        "unknown_property",
        id="ctx-act-key",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("version",),
        "2.0.0",
        V1,
        "$.context.contextAgents",
        "version.v2_only",
        id="context-agents-under-1.0.3",
    ),
    pytest.param(
        without(V2_CONTEXT_AGENTS, ("context", "contextAgents")),
        ("version",),
        DEL,
        V1,
        "$.context.contextGroups",
        "version.v2_only",
        id="context-groups-1.0.3",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("context", "contextAgents", 0, "relevantTypes"),
        [],
        V2,
        "$.context.contextAgents[0].relevantTypes",
        "list.empty",
        id="relevant-empty",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("context", "contextAgents", 0, "relevantTypes", 0),
        "mentor",
        V2,
        "$.context.contextAgents[0].relevantTypes[0]",
        "iri.scheme",
        id="relevant-type-iri",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("context", "contextAgents", 0, "objectType"),
        "Agent",
        V2,
        "$.context.contextAgents[0].objectType",
        "object_type",
        id="ctx-agent-type",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("context", "contextGroups", 0, "objectType"),
        DEL,
        V2,
        "$.context.contextGroups[0].objectType",
        "required",
        id="ctx-group-type",
    ),
    pytest.param(
        V2_CONTEXT_AGENTS,
        ("context", "contextGroups", 0, "group"),
        LEARNER,
        V2,
        "$.context.contextGroups[0].group.objectType",
        "object_type",
        id="ctx-group-is-agent",
    ),
    pytest.param(
        COMPLETED,
        ("context", "contextActivities", "parent", "id"),
        "course",
        V1,
        "$.context.contextActivities.parent.id",
        "iri.scheme",
        id="single-parent-path-has-no-index",
    ),
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)
