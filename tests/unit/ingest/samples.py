"""Statements used by the ingest tests."""

from __future__ import annotations

from typing import Any

EMAIL = "mailto:Ada.Lovelace@example.com"


def statement(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "actor": {"objectType": "Agent", "name": "Ada Lovelace", "mbox": EMAIL},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "done"}},
        "object": {"id": "https://lms.example.com/courses/algebra/1"},
        "result": {"score": {"scaled": 0.8}, "success": True},
        "timestamp": "2024-05-01T10:00:00.123+02:00",
    }
    base.update(overrides)
    return base
