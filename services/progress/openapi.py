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
_REFUSALS: Final = {
    "400": {"description": "bad parameter", "content": {"application/json": {"schema": _ERROR}}},
    "401": {"description": "no or bad token", "content": {"application/json": {"schema": _ERROR}}},
    "404": {"description": "not found", "content": {"application/json": {"schema": _ERROR}}},
}
_OBJECT: Final = {"application/json": {"schema": {"type": "object"}}}
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
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "reason"],
                "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
            }
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/frameworks": {
            "get": {
                "summary": "Framework versions of the token's tenant",
                "responses": {"200": {"description": "versions", "content": _OBJECT}, **_REFUSALS},
            },
            "post": {
                "summary": "Load framework versions (YAML, multi-document YAML or JSON)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/yaml": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "201": {"description": "at least one version stored", "content": _OBJECT},
                    "200": {"description": "every version already stored", "content": _OBJECT},
                    "403": {"description": "a document of another tenant"},
                    "409": {"description": "version changed, or backdated"},
                    **_REFUSALS,
                },
            },
        },
        "/v1/learners/{learner_key}": {
            "get": {
                "summary": "Learner profile: every competency with mastery, attempts, streak, "
                "last activity, time on task and the trend over the last N days",
                "parameters": [
                    _param("learner_key", "path", "string", "32 hex digits"),
                    _param("days", "query", "integer", "trend window", minimum=1, maximum=366),
                    _AS_OF,
                ],
                "responses": {"200": {"description": "profile", "content": _OBJECT}, **_REFUSALS},
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
                "responses": {"200": {"description": "page", "content": _OBJECT}, **_REFUSALS},
            }
        },
        "/v1/outcomes": {
            "get": {
                "summary": "Programme outcomes by business unit: share reaching mastery per "
                "competency, median and p90 time to competency, active learners per week",
                "parameters": [_param("programme", "query", "string", "only this programme")],
                "responses": {"200": {"description": "outcomes", "content": _OBJECT}, **_REFUSALS},
            }
        },
    },
}
