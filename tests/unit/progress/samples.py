"""Frameworks and canonical statement envelopes for the progress tests (built like ingest)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.ingest.handlers import Prepared, authority_for, prepare
from shared.framework import Framework
from shared.xapi import XapiVersion, parse_statement

SALT = "unit-test-salt"
HOME = "https://lms.example.com"
ACT = "https://lms.example.com/activities/"
COURSE = "https://lms.example.com/courses/py-101"
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def framework(
    tenant: str = "acme",
    *,
    version: int = 1,
    effective_from: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    q1_to: str = "py.basics",
    learners: tuple[str, ...] = ("u-1", "u-2"),
) -> Framework:
    return Framework.model_validate(
        {
            "tenant": tenant,
            "framework": f"{tenant}-academy",
            "version": version,
            "effective_from": effective_from,
            "competencies": [
                {"id": "py.basics", "name": "Python basics"},
                {"id": "py.loops", "name": "Loops", "parent": "py.basics"},
            ],
            "mappings": [
                {"match": {"activity_id": ACT + "q1"}, "competency": q1_to},
                {"match": {"context_parent": COURSE}, "competency": "py.loops", "weight": 0.5},
            ],
            "programmes": [
                {
                    "id": "py-2026",
                    "name": "Python 2026",
                    "business_unit": "retail",
                    "start": "2026-02-01",
                    "end": "2026-06-30",
                    "competencies": ["py.basics", "py.loops"],
                    "cohorts": [{"id": "a", "learners": [f"account:{HOME}|{u}" for u in learners]}],
                }
            ],
        }
    )


def statement(
    user: str = "u-1",
    *,
    activity: str = "q1",
    success: bool | None = True,
    at: datetime = T0,
    parent: str | None = None,
    statement_id: uuid.UUID | None = None,
    duration: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(statement_id or uuid.uuid4()),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": user}},
        "verb": {"id": ANSWERED, "display": {"en-US": "answered"}},
        "object": {"objectType": "Activity", "id": ACT + activity},
        "timestamp": at.isoformat(),
    }
    result: dict[str, Any] = {}
    if success is not None:
        result["success"] = success
    if duration is not None:
        result["duration"] = duration
    if result:
        body["result"] = result
    if parent is not None:
        body["context"] = {"contextActivities": {"parent": [{"id": parent}]}}
    return body


def prepared(tenant: str = "acme", salt: str = SALT, **kwargs: Any) -> Prepared:
    stmt = parse_statement(statement(**kwargs), version=XapiVersion.V2_0)
    stored = (kwargs.get("at") or T0) + timedelta(seconds=1)
    return prepare(
        stmt,
        tenant=tenant,
        version=XapiVersion.V2_0,
        stored=stored,
        authority=authority_for(tenant, "lms1"),
        salt=salt,
    )
