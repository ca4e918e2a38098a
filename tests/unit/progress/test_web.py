"""Pure parts of the query API: cell status and trends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.progress.openapi import OPENAPI
from services.progress.web import _trend, status_of

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BEFORE = NOW - timedelta(days=14)


def _cell(**kw: Any) -> dict[str, Any]:
    return {"mastered": False, "attempts": 2, "last_event_at": NOW} | kw


def test_status_of_each_case() -> None:
    assert status_of(None, BEFORE, 10) == "not_started"
    assert status_of(_cell(mastered=True, attempts=50), BEFORE, 10) == "mastered"
    assert status_of(_cell(attempts=10), BEFORE, 10) == "stalled"
    assert status_of(_cell(last_event_at=BEFORE - timedelta(seconds=1)), BEFORE, 10) == "stalled"
    assert status_of(_cell(), BEFORE, 10) == "in_progress"


def test_trend_uses_the_last_point_before_the_window_as_baseline() -> None:
    start = datetime(2026, 2, 20, tzinfo=UTC)
    points = [
        {"competency": "a", "day": date(2026, 2, 18), "mastery": 0.2},
        {"competency": "a", "day": date(2026, 2, 21), "mastery": 0.5},
        {"competency": "a", "day": date(2026, 2, 25), "mastery": 0.7},
        {"competency": "b", "day": date(2026, 2, 22), "mastery": 0.4},
    ]
    trend = _trend(points, start)
    assert trend["a"]["baseline"] == 0.2
    assert [p["day"] for p in trend["a"]["points"]] == ["2026-02-21", "2026-02-25"]
    assert abs(trend["a"]["change"] - 0.5) < 1e-12
    assert trend["b"]["baseline"] is None
    assert trend["b"]["change"] == 0.0


def test_openapi_lists_every_api_route() -> None:
    assert set(OPENAPI["paths"]) == {
        "/v1/frameworks",
        "/v1/learners/{learner_key}",
        "/v1/programmes/{programme}/skills-map",
        "/v1/outcomes",
    }
