"""Rule tests for actors and their identifiers: exactly one inverse functional identifier
(mbox, mbox_sha1sum, openid or account) per agent and its format, agents versus groups
(anonymous groups, members, team, instructor), and the OAuth authority group. Each case
breaks one rule of a valid statement and expects that rule at its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.xapi.rule_cases import AGENT_B, V1, rule_test
from tests.unit.xapi.samples import ANSWERED, ATTENDED, COMPLETED, DEL

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
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
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)
