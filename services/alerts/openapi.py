"""The OpenAPI 3.1 document of the staff API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any, get_args

from services.alerts.staff_repository import FILTERS, SORTS
from shared.alert_events import AlertKind

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_STATUS: dict[str, Any] = {"enum": ["open", "acknowledged", "snoozed", "resolved"]}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _closed(properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    """An object with exactly these properties (all required but ``optional``)."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
        "additionalProperties": False,
    }


_FIELDS: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "tenant": _STR,
    "learner_key": _STR,
    "kind": {"enum": list(get_args(AlertKind))},
    "competency": _or_null(_STR),
    "programme": _or_null(_STR),
    "business_unit": _or_null(_STR),
    "severity": {"enum": ["low", "medium", "high"]},
    "support": {"enum": ["technical", "pastoral", "career"]},
    "status": _STATUS,
    "team": _or_null(_STR),
    "assignee": _or_null(_STR),
    "snoozed_until": _or_null(_TIME),
    "signals": _INT,
    "first_seen_at": _TIME,
    "last_seen_at": _TIME,
    "resolved_at": _or_null(_TIME),
    "resolution": {"enum": ["auto", "staff", None]},
    "note": _or_null(_STR),
    "created_at": _TIME,
    "updated_at": _TIME,
    "version": _INT,
}
# in lists: the scalar part of the evidence; one alert: all of it and its history
# learner_name: only for tokens allowed to see names (tokens create --see-names), from ingest
_NAME: dict[str, Any] = {
    "learner_name": {
        **_or_null(_STR),
        "description": "Display name from ingest, only for tokens allowed to see names",
    }
}
_ALERT_SUMMARY = _closed(
    {**_FIELDS, **_NAME, "evidence_summary": {"type": "object", "description": "counts, rates..."}},
    "learner_name",
)
_HISTORY = _closed(
    {
        "id": _INT,
        "event_id": {"type": "string", "format": "uuid"},
        "action": _STR,
        "actor": _STR,
        "from_status": _or_null(_STATUS),
        "to_status": _STATUS,
        "details": {"type": "object"},
        "at": _TIME,
    }
)
_ALERT = _closed(
    {
        **_FIELDS,
        **_NAME,
        "evidence": {"type": "object", "description": "counts, statement_ids, trajectory"},
    },
    "learner_name",
)
_ALERT_WITH_HISTORY = _closed(
    {
        **_ALERT["properties"],
        "history": {"type": "array", "items": {"$ref": "#/components/schemas/History"}},
    },
    "learner_name",
)
_ERROR = _closed({"error": _STR, "reason": _STR})
_ME = _closed({"tenant": _STR, "team": _or_null(_STR), "name": _STR, "see_names": _BOOL})


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
    # what the bodies accept (services/alerts/web.py): PostgreSQL text holds no NUL character
    no_nul = r"^[^\x00]*$"
    note = {"note": {"type": "string", "maxLength": 4000, "pattern": no_nul}}
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
        {
            "name": "offset",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        },
    ]
    page = _closed(
        {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AlertSummary"}},
            "total": _INT,
            "limit": _INT,
            "offset": _INT,
        }
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Skillstream alerts - staff API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": {
            "/api/me": {
                "get": {
                    "summary": "The token's tenant, team and name",
                    "responses": {
                        "200": _resp({"$ref": "#/components/schemas/Me"}),
                        **_errors(401),
                    },
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
                    "responses": {
                        "200": _resp({"$ref": "#/components/schemas/AlertWithHistory"}),
                        **_errors(401, 404),
                    },
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
                    "properties": {
                        "assignee": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "pattern": no_nul,
                        },
                        **note,
                    },
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
            "schemas": {
                "Alert": _ALERT,
                "AlertSummary": _ALERT_SUMMARY,
                "AlertWithHistory": _ALERT_WITH_HISTORY,
                "History": _HISTORY,
                "Me": _ME,
                "Error": _ERROR,
            },
        },
    }
