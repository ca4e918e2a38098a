"""Rule tests for results and times: score ranges (scaled, raw against min and max), ISO 8601
durations, and the timestamp and stored properties (format, impossible dates, the
forbidden ``-00:00`` offset). Each case breaks one rule of a valid statement and expects
that rule at its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.xapi.rule_cases import V1, rule_test
from tests.unit.xapi.samples import ANSWERED, COMPLETED

# (base, path to change, new value or DEL, version, expected violation path, rule)
INVALID: list[Any] = [
    # --- result -------------------------------------------------------------------------------
    pytest.param(
        ANSWERED,
        ("result", "score", "scaled"),
        1.5,
        V1,
        "$.result.score.scaled",
        "score.range",
        id="scaled-above-1",
    ),
    pytest.param(
        ANSWERED,
        ("result", "score", "scaled"),
        -1.01,
        V1,
        "$.result.score.scaled",
        "score.range",
        id="scaled-below-minus-1",
    ),
    pytest.param(
        ANSWERED,
        ("result", "score", "raw"),
        2,
        V1,
        "$.result.score.raw",
        "score.range",
        id="raw-above-max",
    ),
    pytest.param(
        COMPLETED,
        ("result", "score", "raw"),
        -1,
        V1,
        "$.result.score.raw",
        "score.range",
        id="raw-below-min",
    ),
    pytest.param(
        COMPLETED,
        ("result", "score", "min"),
        100,
        V1,
        "$.result.score.min",
        "score.range",
        id="min-not-below-max",
    ),
    pytest.param(
        ANSWERED,
        ("result", "duration"),
        "42 seconds",
        V1,
        "$.result.duration",
        "duration.iso8601",
        id="duration-text",
    ),
    pytest.param(
        ANSWERED,
        ("result", "duration"),
        "PT",
        V1,
        "$.result.duration",
        "duration.iso8601",
        id="duration-empty-time",
    ),
    pytest.param(
        ANSWERED,
        ("result", "duration"),
        "P4W1D",
        V1,
        "$.result.duration",
        "duration.iso8601",
        id="duration-weeks-combined",
    ),
    pytest.param(
        ANSWERED,
        ("result", "duration"),
        "PT0000:00:42",
        V1,
        "$.result.duration",
        "duration.iso8601",
        id="duration-alternative-format",
    ),
    # --- timestamps ---------------------------------------------------------------------------
    pytest.param(
        ANSWERED,
        ("timestamp",),
        "2024-05-02T09:15:27-00:00",
        V1,
        "$.timestamp",
        "timestamp.offset",
        id="negative-zero-colon",
    ),
    pytest.param(
        ANSWERED,
        ("timestamp",),
        "2024-05-02T09:15:27-0000",
        V1,
        "$.timestamp",
        "timestamp.offset",
        id="negative-zero-basic",
    ),
    pytest.param(
        ANSWERED,
        ("timestamp",),
        "2024-05-02T09:15:27-00",
        V1,
        "$.timestamp",
        "timestamp.offset",
        id="negative-zero-hours",
    ),
    pytest.param(
        COMPLETED,
        ("stored",),
        "2024-05-02T10:00:01-00:00",
        V1,
        "$.stored",
        "timestamp.offset",
        id="stored-negative-zero",
    ),
    pytest.param(
        ANSWERED,
        ("timestamp",),
        "02/05/2024 09:15",
        V1,
        "$.timestamp",
        "timestamp.format",
        id="timestamp-not-iso",
    ),
    pytest.param(
        ANSWERED,
        ("timestamp",),
        "2024-02-30T09:15:27Z",
        V1,
        "$.timestamp",
        "timestamp.format",
        id="timestamp-impossible-date",
    ),
    pytest.param(
        ANSWERED, ("timestamp",), 1714634127, V1, "$.timestamp", "type", id="timestamp-epoch-number"
    ),
]


test_invalid_statement_reports_rule_at_path = rule_test(INVALID)
