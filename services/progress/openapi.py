"""The OpenAPI 3 document of the query API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any, Final


def _param(name: str, where: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, **extra}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_ERROR: Final = {"$ref": "#/components/schemas/Error"}


def _error(what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": _ERROR}}}


def _ok(what: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": what, "content": {"application/json": {"schema": ref}}}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """A closed object: these properties and no others."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def _map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


_REFUSALS: Final = {
    "400": _error("bad parameter"),
    "401": _error("no or bad token"),
    "404": _error("not found"),
}
_STR: Final = {"type": "string"}
_INT: Final = {"type": "integer"}
_NUM: Final = {"type": "number"}
_BOOL: Final = {"type": "boolean"}
_TIME: Final = {"type": "string", "format": "date-time"}
_DAY: Final = {"type": "string", "format": "date"}
_STATUS: Final = {"type": "string", "enum": ["not_started", "in_progress", "stalled", "mastered"]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_TREND: Final = _object(
    {
        "baseline": _nullable(_NUM),
        "points": {"type": "array", "items": _object({"day": _DAY, "mastery": _NUM})},
        "change": _nullable(_NUM),
    }
)
_SCHEMAS: Final[dict[str, Any]] = {
    "Error": _object({"error": _STR, "reason": _STR}),
    "Versions": _object(
        {
            "versions": {
                "type": "array",
                "items": _object(
                    {
                        "framework": _STR,
                        "version": _INT,
                        "effective_from": _TIME,
                        "content_hash": _STR,
                        "loaded_at": _TIME,
                    }
                ),
            }
        }
    ),
    "Loaded": _object(
        {
            "results": {
                "type": "array",
                "items": _object(
                    {
                        "framework": _STR,
                        "version": _INT,
                        "status": {"type": "string", "enum": ["stored", "unchanged"]},
                    }
                ),
            }
        }
    ),
    "Profile": _object(
        {
            "learner_key": _STR,
            "as_of": _TIME,
            "days": _INT,
            "activity": _object({"events": _INT, "first_event_at": _TIME, "last_event_at": _TIME}),
            "competencies": {
                "type": "array",
                # a competency with evidence has every field; one without only the first four
                "items": _object(
                    {
                        "competency": _STR,
                        "status": _STATUS,
                        "mastery": _nullable(_NUM),
                        "attempts": _INT,
                    },
                    {
                        "framework": _STR,
                        "framework_version": _INT,
                        "mastered": _BOOL,
                        "mastered_at": _nullable(_TIME),
                        "correct_total": _INT,
                        "correct_streak": _INT,
                        "wrong_streak": _INT,
                        "hints": _INT,
                        "time_on_task_s": _NUM,
                        "first_activity": _nullable(_TIME),
                        "last_activity": _nullable(_TIME),
                        "trend": _TREND,
                    },
                ),
            },
        }
    ),
    "SkillsMap": _object(
        {
            "programme": _STR,
            "cohort": _nullable(_STR),
            "as_of": _TIME,
            "competencies": {"type": "array", "items": _STR},
            "counts": _map(
                _object(
                    {"mastered": _INT, "in_progress": _INT, "not_started": _INT, "stalled": _INT}
                )
            ),
            "learners": {
                "type": "array",
                "items": _object(
                    {
                        "learner_key": _STR,
                        "cells": _map(_object({"status": _STATUS, "mastery": _nullable(_NUM)})),
                    }
                ),
            },
            "next": _nullable(_STR),
        }
    ),
    "Outcomes": _object(
        {
            "programme": _nullable(_STR),
            "business_units": _map(
                _object(
                    {
                        "competencies": {
                            "type": "array",
                            "items": _object(
                                {
                                    "competency": _STR,
                                    "learners": _INT,
                                    "reached_mastery": _INT,
                                    "share_mastered": _NUM,
                                    "median_time_to_competency_s": _nullable(_NUM),
                                    "p90_time_to_competency_s": _nullable(_NUM),
                                }
                            ),
                        },
                        "active_per_week": {
                            "type": "array",
                            "items": _object({"week": _DAY, "active": _INT}),
                        },
                    }
                )
            ),
        }
    ),
}
_AS_OF = _param(
    "as_of", "query", "string", "evaluate at this time (default: now)", format="date-time"
)

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Skillstream progress API",
        "version": "1.0.0",
        "description": "Mastery per learner and competency, cohort skills maps and programme "
        "outcomes. Every /v1 route needs a tenant-scoped bearer token "
        "(python -m services.progress.cli tokens create).",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _SCHEMAS,
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/frameworks": {
            "get": {
                "summary": "Framework versions of the token's tenant",
                "responses": {
                    "200": _ok("versions", "Versions"),
                    "400": _REFUSALS["400"],
                    "401": _REFUSALS["401"],
                },
            },
            "post": {
                "summary": "Load framework versions (YAML, multi-document YAML or JSON)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/yaml": {
                            "schema": {
                                "type": "object",
                                "description": "a framework document, or several as a "
                                "multi-document YAML stream",
                            }
                        },
                        "application/json": {
                            "schema": {"type": "object", "description": "a framework document"}
                        },
                    },
                },
                "responses": {
                    "201": _ok("at least one version stored", "Loaded"),
                    "200": _ok("every version already stored", "Loaded"),
                    "400": _error("not a valid framework file"),
                    "401": _REFUSALS["401"],
                    "403": _error("a document of another tenant"),
                    "409": _error("version changed, or backdated"),
                    "413": _error("larger than 5 MiB"),
                },
            },
        },
        "/v1/learners/{learner_key}": {
            "get": {
                "summary": "Learner profile: every competency with mastery, attempts, streak, "
                "last activity, time on task and the trend over the last N days",
                "parameters": [
                    _param(
                        "learner_key", "path", "string", "32 hex digits", pattern="^[0-9a-f]{32}$"
                    ),
                    _param("days", "query", "integer", "trend window", minimum=1, maximum=366),
                    _AS_OF,
                ],
                "responses": {"200": _ok("profile", "Profile"), **_REFUSALS},
            }
        },
        "/v1/programmes/{programme}/skills-map": {
            "get": {
                "summary": "Learners x competencies of a programme (paginated by learner key) "
                "with counts mastered / in progress / not started / stalled",
                "parameters": [
                    _param("programme", "path", "string", "programme id"),
                    _param("cohort", "query", "string", "only this cohort"),
                    _param("limit", "query", "integer", "page size", minimum=1, maximum=500),
                    _param("after", "query", "string", "the previous page's 'next'"),
                    _AS_OF,
                ],
                "responses": {"200": _ok("page", "SkillsMap"), **_REFUSALS},
            }
        },
        "/v1/outcomes": {
            "get": {
                "summary": "Programme outcomes by business unit: share reaching mastery per "
                "competency, median and p90 time to competency, active learners per week",
                "parameters": [_param("programme", "query", "string", "only this programme")],
                "responses": {"200": _ok("outcomes", "Outcomes"), **_REFUSALS},
            }
        },
    },
}
