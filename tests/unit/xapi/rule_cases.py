"""What the table-driven xAPI rule tests (``test_rules_*.py``) share: the two versions a case
is parsed under, a second agent (an mbox only) for the cases that need one besides the
learner, and :func:`rule_test`, the one test every table runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.xapi import XapiVersion
from tests.unit.xapi.samples import JsonPath, assert_violation

V1 = XapiVersion.V1_0_3
V2 = XapiVersion.V2_0

AGENT_B = {"mbox": "mailto:b@example.edu"}


def rule_test(cases: list[Any]) -> Callable[..., None]:
    """The test of a table of ``cases`` -- (base, path to change, new value or DEL, version,
    expected violation path, rule) -- for a module to bind as
    ``test_invalid_statement_reports_rule_at_path``."""

    def test(
        base: dict[str, Any],
        path: JsonPath,
        value: Any,
        version: XapiVersion,
        where: str,
        rule: str,
    ) -> None:
        assert_violation(base, path, value, version, where, rule)

    columns = ("base", "path", "value", "version", "where", "rule")
    parametrized: Callable[..., None] = pytest.mark.parametrize(columns, cases)(test)
    return parametrized
