"""Routing: the first rule (lowest priority, then oldest) matching an alert chooses its team.

A rule matches when each of its conditions is unset or equal (``min_severity``: at least that
severity). No matching rule leaves the alert without a team: only tenant-wide tokens see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.alerts.lifecycle import SEVERITY_RANK
from shared.alert_events import Severity


@dataclass(frozen=True)
class Rule:
    id: int
    priority: int
    team: str
    business_unit: str | None = None
    programme: str | None = None
    kind: str | None = None
    min_severity: Severity | None = None

    def matches(
        self, business_unit: str | None, programme: str | None, kind: str, severity: Severity
    ) -> bool:
        return (
            (self.business_unit is None or self.business_unit == business_unit)
            and (self.programme is None or self.programme == programme)
            and (self.kind is None or self.kind == kind)
            and (
                self.min_severity is None
                or SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]
            )
        )


def route(
    rules: Iterable[Rule],
    *,
    business_unit: str | None,
    programme: str | None,
    kind: str,
    severity: Severity,
) -> str | None:
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if rule.matches(business_unit, programme, kind, severity):
            return rule.team
    return None
