"""The OpenAPI 3.1 document of the staff API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from services.alerts.staff_repository import FILTERS, SORTS

_ALERT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "tenant": {"type": "string"},
        "learner_key": {"type": "string"},
        "kind": {
            "enum": ["wheel_spinning", "failure_streak", "inactivity", "gaming", "regression"]
        },
        "competency": {"type": ["string", "null"]},
        "programme": {"type": ["string", "null"]},
        "business_unit": {"type": ["string", "null"]},
        "severity": {"enum": ["low", "medium", "high"]},
        "support": {"enum": ["technical", "pastoral", "career"]},
        "status": {"enum": ["open", "acknowledged", "snoozed", "resolved"]},
        "team": {"type": ["string", "null"]},
        "assignee": {"type": ["string", "null"]},
        "snoozed_until": {"type": ["string", "null"], "format": "date-time"},
        "signals": {"type": "integer"},
        "first_seen_at": {"type": "string", "format": "date-time"},
        "last_seen_at": {"type": "string", "format": "date-time"},
        "resolved_at": {"type": ["string", "null"], "format": "date-time"},
        "resolution": {"enum": ["auto", "staff", None]},
        "note": {"type": ["string", "null"]},
        "evidence": {"type": "object", "description": "counts, statement_ids, trajectory..."},
        "evidence_summary": {"type": "object"},
        "version": {"type": "integer"},
    },
}
_HISTORY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "event_id": {"type": "string", "format": "uuid"},
        "action": {"type": "string"},
        "actor": {"type": "string"},
        "from_status": {"type": ["string", "null"]},
        "to_status": {"type": "string"},
        "details": {"type": "object"},
        "at": {"type": "string", "format": "date-time"},
    },
}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}


def _resp(schema: dict[str, Any], what: str = "OK") -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _resp({"$ref": "#/components/schemas/Error"}, "error") for c in codes}


def _action(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/AlertId"}],
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": {
                "200": _resp({"$ref": "#/components/schemas/Alert"}),
                **_errors(400, 401, 404, 409),
            },
        }
    }


def document() -> dict[str, Any]:
    note = {"note": {"type": "string", "maxLength": 4000}}
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "query",
            "schema": {"type": "string"},
            "description": "repeat or comma-separate for several values",
        }
        for name in FILTERS
    ]
    params += [
        {"name": "learner", "in": "query", "schema": {"type": "string"}},
        {
            "name": "sort",
            "in": "query",
            "schema": {"enum": [*SORTS, *(f"-{s}" for s in SORTS)], "default": "-last_seen_at"},
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
        },
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ]
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }
    with_history = {
        "allOf": [
            {"$ref": "#/components/schemas/Alert"},
            {
                "type": "object",
                "properties": {
                    "history": {"type": "array", "items": {"$ref": "#/components/schemas/History"}}
                },
            },
        ]
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Skillstream alerts - staff API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": {
            "/api/me": {
                "get": {
                    "summary": "The token's tenant, team and name",
                    "responses": {"200": _resp({"type": "object"}), **_errors(401)},
                }
            },
            "/api/alerts": {
                "get": {
                    "summary": "List alerts visible to the token",
                    "parameters": params,
                    "responses": {"200": _resp(page), **_errors(400, 401)},
                }
            },
            "/api/alerts/{alert_id}": {
                "get": {
                    "summary": "One alert with its evidence and history",
                    "parameters": [{"$ref": "#/components/parameters/AlertId"}],
                    "responses": {"200": _resp(with_history), **_errors(401, 404)},
                }
            },
            "/api/alerts/{alert_id}/acknowledge": _action(
                "Acknowledge (open or snoozed)", {"type": "object", "properties": note}
            ),
            "/api/alerts/{alert_id}/resolve": _action(
                "Resolve with an optional note", {"type": "object", "properties": note}
            ),
            "/api/alerts/{alert_id}/assign": _action(
                "Assign to a member of staff",
                {
                    "type": "object",
                    "required": ["assignee"],
                    "properties": {"assignee": {"type": "string"}, **note},
                },
            ),
            "/api/alerts/{alert_id}/snooze": _action(
                "Snooze until a time (back to open then)",
                {
                    "type": "object",
                    "required": ["until"],
                    "properties": {"until": {"type": "string", "format": "date-time"}, **note},
                },
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "AlertId": {
                    "name": "alert_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            },
            "schemas": {"Alert": _ALERT, "History": _HISTORY, "Error": _ERROR},
        },
    }
