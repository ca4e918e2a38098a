"""Table-driven rule tests: each invalid case breaks one rule of a valid statement."""

from __future__ import annotations

from typing import Any

import pytest

from shared.xapi import StatementValidationError, XapiVersion, parse_statement
from tests.unit.xapi.samples import (
    ANSWERED,
    ATTENDED,
    COMPLETED,
    DEL,
    SUBSTATEMENT,
    V2_CONTEXT_AGENTS,
    VOIDING,
    WITH_ATTACHMENT,
    JsonPath,
    apply_change,
    assert_violation,
    with_value,
)

V1 = XapiVersion.V1_0_3
V2 = XapiVersion.V2_0

STATEMENT_REF = {"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"}
AGENT_B = {"mbox": "mailto:b@example.edu"}
SUPPORTING_MEDIA = "http://id.tincanapi.com/attachment/supporting_media"


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
    # --- actors ------------------------------------------------------------------------------
    pytest.param(
        ANSWERED,
        ("actor", "mbox"),
        "mailto:ada@example.edu",
        V1,
        "$.actor.account",
        "ifi.exactly_one",
        id="two-ifis",
    ),
    pytest.param(
        ANSWERED, ("actor",), {"name": "Nobody"}, V1, "$.actor", "ifi.exactly_one", id="no-ifi"
    ),
    pytest.param(
        ANSWERED,
        ("actor",),
        {"mbox": "ada@example.edu"},
        V1,
        "$.actor.mbox",
        "mbox.mailto",
        id="mbox-without-mailto",
    ),
    pytest.param(
        ANSWERED,
        ("actor",),
        {"mbox_sha1sum": "abc"},
        V1,
        "$.actor.mbox_sha1sum",
        "mbox_sha1sum.hex",
        id="sha1-short",
    ),
    pytest.param(
        ANSWERED,
        ("actor",),
        {"openid": "id.example.edu/77"},
        V1,
        "$.actor.openid",
        "iri.scheme",
        id="openid-no-scheme",
    ),
    pytest.param(
        ANSWERED,
        ("actor", "account", "homePage"),
        "lms.example.edu",
        V1,
        "$.actor.account.homePage",
        "iri.scheme",
        id="homepage-no-scheme",
    ),
    pytest.param(
        ANSWERED,
        ("actor", "objectType"),
        "Person",
        V1,
        "$.actor",
        "object_type",
        id="actor-bad-object-type",
    ),
    pytest.param(
        ATTENDED,
        ("actor", "member"),
        DEL,
        V1,
        "$.actor.member",
        "group.anonymous_member",
        id="anon-group-no-members",
    ),
    pytest.param(
        ATTENDED,
        ("actor", "member", 1),
        {"objectType": "Group", "mbox": "mailto:g@x.org"},
        V1,
        "$.actor.member[1].objectType",
        "group.member_agent",
        id="group-in-group",
    ),
    pytest.param(
        ATTENDED,
        ("actor", "member", 0),
        {"name": "x"},
        V1,
        "$.actor.member[0]",
        "ifi.exactly_one",
        id="member-without-ifi",
    ),
    pytest.param(
        ATTENDED,
        ("context", "team"),
        {"mbox": "mailto:t@x.org"},
        V1,
        "$.context.team.objectType",
        "required",
        id="team-must-be-group",
    ),
    pytest.param(
        ATTENDED,
        ("context", "instructor"),
        {"name": "T"},
        V1,
        "$.context.instructor",
        "ifi.exactly_one",
        id="instructor-ifi",
    ),
    pytest.param(
        COMPLETED,
        ("authority", "member"),
        [AGENT_B],
        V1,
        "$.authority",
        "authority.oauth_group",
        id="authority-group-one-member",
    ),
    pytest.param(
        COMPLETED,
        ("authority",),
        {"objectType": "Group", "mbox": "mailto:g@x.org"},
        V1,
        "$.authority",
        "authority.oauth_group",
        id="authority-identified-group",
    ),
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
]


@pytest.mark.parametrize(("base", "path", "value", "version", "where", "rule"), INVALID)
def test_invalid_statement_reports_rule_at_path(
    base: dict[str, Any],
    path: JsonPath,
    value: Any,
    version: XapiVersion,
    where: str,
    rule: str,
) -> None:
    assert_violation(base, path, value, version, where, rule)


VALID: list[Any] = [
    pytest.param(ANSWERED, ("timestamp",), "2024-05-02T09:15:27+00:00", id="plus-zero-offset"),
    pytest.param(ANSWERED, ("timestamp",), "2024-05-02T09:15:27.123456789Z", id="nanoseconds"),
    pytest.param(ANSWERED, ("timestamp",), "2024-05-02T09:15:27,5+0530", id="comma-fraction"),
    pytest.param(ANSWERED, ("timestamp",), "2024-05-02T09:15:27", id="naive-timestamp"),
    pytest.param(ANSWERED, ("result", "duration"), "P3Y1M29DT4H35M59.14S", id="long-duration"),
    pytest.param(ANSWERED, ("result", "duration"), "P4W", id="weeks-duration"),
    pytest.param(ANSWERED, ("result", "duration"), "PT16559.14S", id="seconds-duration"),
    pytest.param(ANSWERED, ("result", "score"), {"scaled": -1}, id="scaled-minus-one"),
    pytest.param(ANSWERED, ("id",), "6690E6C9-3EF0-4ED3-8B37-7F3964730BEE", id="uppercase-uuid"),
    pytest.param(
        ANSWERED,
        ("actor",),
        {"mbox_sha1sum": "EBD31E95054C018B10727CCFFD2EF2EC3A016EE9"},
        id="upper-sha1",
    ),
    pytest.param(ANSWERED, ("actor",), {"openid": "https://id.example.edu/ada"}, id="openid"),
    pytest.param(
        ANSWERED,
        ("verb", "display"),
        {"zh-Hant-TW": "x", "sgn-BE-FR": "y", "x-klingon": "z", "de-CH-1901": "w"},
        id="language-tags",
    ),
    pytest.param(
        ANSWERED,
        ("context", "extensions"),
        {"urn:x:y": {"n": None, "l": [None]}},
        id="null-inside-extension",
    ),
    pytest.param(
        ANSWERED,
        ("context", "contextActivities", "other"),
        {"id": "urn:isbn:1"},
        id="single-context-activity",
    ),
    pytest.param(ANSWERED, ("object", "objectType"), DEL, id="activity-default-object-type"),
    pytest.param(
        COMPLETED, ("object",), {"objectType": "Agent", "mbox": "mailto:b@x.org"}, id="agent-object"
    ),
    pytest.param(ANSWERED, ("version",), "1.0.0", id="version-1.0.0"),
    # the spec (and the conformance suite) reject "anything but 1.0 or 1.0.x"
    pytest.param(ANSWERED, ("version",), "1.0", id="version-1.0-short"),
    pytest.param(ANSWERED, ("version",), "1.0.9", id="version-1.0.9"),
    pytest.param(
        # not the signature usageType, which requires application/octet-stream
        with_value(WITH_ATTACHMENT, ("attachments", 0, "usageType"), SUPPORTING_MEDIA),
        ("attachments", 0, "contentType"),
        "text/plain; charset=utf-8",
        id="content-type-params",
    ),
    pytest.param(WITH_ATTACHMENT, ("attachments", 0, "sha2"), "a" * 128, id="sha512"),
    pytest.param(ATTENDED, ("context", "instructor"), ATTENDED["actor"], id="group-instructor"),
]


@pytest.mark.parametrize(("base", "path", "value"), VALID)
def test_valid_variants_parse(base: dict[str, Any], path: JsonPath, value: Any) -> None:
    doc = apply_change(base, path, value)
    parse_statement(doc, version=V1)
    parse_statement(doc, version=V2)


def test_version_2_0_short_accepted_under_2_0() -> None:
    assert parse_statement({**ANSWERED, "version": "2.0"}, version=V2).version == "2.0"


def test_version_2_accepted_only_under_2_0() -> None:
    statement = parse_statement(V2_CONTEXT_AGENTS, version=V2)
    assert statement.version == "2.0.0"
    assert statement.context is not None
    assert statement.context.context_agents is not None
    assert statement.context.context_agents[0].agent.mbox == "mailto:mentor@example.edu"


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
