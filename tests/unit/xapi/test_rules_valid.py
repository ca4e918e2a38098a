"""Variants of valid statements that must parse under both 1.0.3 and 2.0 (timestamp and
duration forms, identifiers, language tags, context activities, objects, versions,
attachments), and the 2.0 versions and contextAgents accepted only under 2.0."""

from __future__ import annotations

from typing import Any

import pytest

from shared.xapi import parse_statement
from tests.unit.xapi.rule_cases import V1, V2
from tests.unit.xapi.samples import (
    ANSWERED,
    ATTENDED,
    COMPLETED,
    DEL,
    V2_CONTEXT_AGENTS,
    WITH_ATTACHMENT,
    JsonPath,
    apply_change,
    with_value,
)

SUPPORTING_MEDIA = "http://id.tincanapi.com/attachment/supporting_media"

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
