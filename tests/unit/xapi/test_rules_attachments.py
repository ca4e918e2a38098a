"""Rule tests for attachments: usageType and fileUrl IRIs, contentType (including the one the
2.0 signature usage type requires), length, sha2 and the required display. Each case breaks
one rule of a valid statement and expects that rule at its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.xapi.rule_cases import V1, V2, rule_test
from tests.unit.xapi.samples import DEL, WITH_ATTACHMENT

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
    # --- attachments ------------------------------------------------------------------------------
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "usageType"),
        "signature",
        V1,
        "$.attachments[0].usageType",
        "iri.scheme",
        id="usage-type-iri",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "contentType"),
        "octet-stream",
        V1,
        "$.attachments[0].contentType",
        "content_type",
        id="content-type",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "length"),
        -1,
        V1,
        "$.attachments[0].length",
        "attachment.length",
        id="length-negative",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "length"),
        12.5,
        V1,
        "$.attachments[0].length",
        "type",
        id="length-float",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "sha2"),
        "ab" * 20,
        V1,
        "$.attachments[0].sha2",
        "sha2.hex",
        id="sha2-is-sha1-length",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "display"),
        DEL,
        V1,
        "$.attachments[0].display",
        "required",
        id="display-required",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "fileUrl"),
        "sig.bin",
        V1,
        "$.attachments[0].fileUrl",
        "iri.scheme",
        id="file-url",
    ),
    pytest.param(
        WITH_ATTACHMENT,
        ("attachments", 0, "contentType"),
        "text/plain; charset=ascii",
        V2,
        "$.attachments[0].contentType",
        "attachment.signature_content_type",
        id="signature-content-type",
    ),
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)
