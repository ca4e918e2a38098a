"""The staff API (JSON, bearer tokens; see :mod:`services.alerts.staff`), mounted on the shared
ops app (``/healthz``, ``/readyz``, ``/metrics``). The OpenAPI 3 document is ``/openapi.json``.

Routes: ``GET /api/me``; ``GET /api/alerts`` (filters ``status``, ``kind``, ``team``,
``business_unit``, ``programme``, ``severity``, ``competency`` -- each repeatable or
comma-separated -- and ``learner``; ``sort`` = ``[-]last_seen_at|first_seen_at|updated_at|
created_at|severity|kind|status``; ``limit`` 1..200, ``offset``); ``GET /api/alerts/{id}``
(with evidence and history); ``POST /api/alerts/{id}/acknowledge|resolve|assign|snooze``.
An alert outside the token's tenant or team answers 404, exactly like one that does not exist.
The inbox page (``/inbox``) is served by :mod:`services.alerts.inbox`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import asyncpg
import orjson
from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from services.alerts import inbox
from services.alerts import repository as repo
from services.alerts import staff_repository as staff_repo
from services.alerts.changes import Changes, Outcome
from services.alerts.errors import AlertsError, BadRequestError, NotFoundError
from services.alerts.lifecycle import StaffAction
from services.alerts.metrics import AlertsMetrics
from services.alerts.names import LearnerNames
from services.alerts.openapi import document
from services.alerts.staff import StaffAuth, StaffPrincipal
from shared.health import Health
from shared.http import Handler, ops_app

MAX_LIMIT: Final = 200
# beyond a 32-bit offset there is nothing to page through, and PostgreSQL's bigint overflows
MAX_OFFSET: Final = 2**31 - 1
# a snooze is for days or weeks; bounding it keeps the time representable once in UTC
MAX_SNOOZE_UNTIL: Final = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AlertsContext:
    pool: asyncpg.Pool[Any]
    auth: StaffAuth
    changes: Changes
    metrics: AlertsMetrics
    names: LearnerNames | None = None  # ingest's directory, when configured


CONTEXT_KEY: Final = web.AppKey("alerts", AlertsContext)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _no_nul(self) -> _Body:
        """PostgreSQL text cannot hold NUL: refuse it here, not fail on insert."""
        for name, value in self:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name} may not contain NUL characters")
        return self


class AcknowledgeBody(_Body):
    note: str | None = Field(default=None, max_length=4000)


class ResolveBody(_Body):
    note: str | None = Field(default=None, max_length=4000)


class AssignBody(_Body):
    assignee: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=4000)


class SnoozeBody(_Body):
    until: AwareDatetime
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("until")
    @classmethod
    def _representable(cls, until: datetime) -> datetime:
        try:
            utc = until.astimezone(UTC)
        except OverflowError:
            raise ValueError("until is out of range") from None
        if utc >= MAX_SNOOZE_UNTIL:
            raise ValueError(f"until must be before {MAX_SNOOZE_UNTIL.date()}")
        return until


_BODIES: dict[StaffAction, type[_Body]] = {
    "acknowledge": AcknowledgeBody,
    "resolve": ResolveBody,
    "assign": AssignBody,
    "snooze": SnoozeBody,
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data, default=str), content_type="application/json"
    )


def _refuse_nul(request: web.Request) -> None:
    """A NUL character anywhere in the path or query: PostgreSQL text cannot hold one."""
    if "\x00" in request.path or any(
        "\x00" in key or "\x00" in value for key, value in request.query.items()
    ):
        raise BadRequestError("parameters may not contain NUL characters")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    api = request.path.startswith("/api/")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not api or exc.status < 400:
            raise
        # the router's own refusals (no such route, wrong method) in the API's error shape
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "bad_request")
        response = _json({"error": exc.reason, "reason": reason}, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except AlertsError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = _json(exc.body(), exc.status)
        if headers:
            response.headers.update(headers)
        return response


def present(alert: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
    """An alert as the API shows it (the evidence only in full)."""
    out = {
        key: alert[key]
        for key in (
            "id", "tenant", "learner_key", "kind", "programme", "business_unit", "severity",
            "support", "status", "team", "assignee", "snoozed_until", "signals", "first_seen_at",
            "last_seen_at", "resolved_at", "resolution", "note", "created_at", "updated_at",
            "version",
        )
    }  # fmt: skip
    out["competency"] = alert["competency"] or None
    if full:
        out["evidence"] = alert["evidence"]
    else:
        out["evidence_summary"] = {
            k: v for k, v in alert["evidence"].items() if isinstance(v, int | float | str)
        }
    return out


async def _named(
    request: web.Request, who: StaffPrincipal, alerts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``learner_name`` on each alert for a token allowed to see names (null when ingest
    knows none or does not answer); no such field for any other token."""
    names = request.app[CONTEXT_KEY].names
    if not who.see_names or names is None or not alerts:
        return alerts
    found = await names.lookup(who.tenant, (a["learner_key"] for a in alerts))
    return [a | {"learner_name": found.get(a["learner_key"])} for a in alerts]


async def _principal(request: web.Request) -> StaffPrincipal:
    """The token's principal (401 without one), then the parameters' first check."""
    who = await request.app[CONTEXT_KEY].auth.authenticate(request.headers.get("Authorization"))
    _refuse_nul(request)
    return who


def _alert_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["alert_id"])
    except ValueError:
        raise NotFoundError("no such alert") from None


async def me(request: web.Request) -> web.Response:
    who = await _principal(request)
    return _json(
        {"tenant": who.tenant, "team": who.team, "name": who.name, "see_names": who.see_names}
    )


def parse_query(params: Any) -> staff_repo.Query:
    filters: dict[str, list[str]] = {}
    for name in staff_repo.FILTERS:
        values = [v for raw in params.getall(name, []) for v in raw.split(",") if v]
        if values:
            filters[name] = values
    sort = params.get("sort", "-last_seen_at")
    if sort.lstrip("-") not in staff_repo.SORTS:
        raise BadRequestError(f"sort must be one of {sorted(staff_repo.SORTS)}, optionally '-'")
    unknown = set(params) - {*staff_repo.FILTERS, "learner", "sort", "limit", "offset"}
    if unknown:
        raise BadRequestError(f"unknown parameters: {', '.join(sorted(unknown))}")
    try:
        limit = int(params.get("limit", 50))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise BadRequestError("limit and offset are integers") from None
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise BadRequestError(f"limit is 1..{MAX_LIMIT}, offset 0..{MAX_OFFSET}")
    return staff_repo.Query(filters, params.get("learner"), sort, limit, offset)


async def list_alerts(request: web.Request) -> web.Response:
    who = await _principal(request)
    query = parse_query(request.query)
    async with request.app[CONTEXT_KEY].pool.acquire() as conn:
        rows, total = await staff_repo.list_alerts(conn, who, query)
    return _json(
        {
            "items": await _named(request, who, [present(r) for r in rows]),
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


async def get_alert(request: web.Request) -> web.Response:
    who = await _principal(request)
    alert_id = _alert_id(request)
    async with request.app[CONTEXT_KEY].pool.acquire() as conn:
        alert = await staff_repo.get_alert(conn, who, alert_id)
        if alert is None:
            raise NotFoundError("no such alert")
        history = await repo.history(conn, alert_id)
    (shown,) = await _named(request, who, [present(alert, full=True)])
    return _json(shown | {"history": history})


async def action(request: web.Request) -> web.Response:
    who = await _principal(request)
    alert_id = _alert_id(request)
    name = cast("StaffAction", request.match_info["action"])
    try:
        body = _BODIES[name].model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "$"
        raise BadRequestError(f"{where}: {first['msg']}") from None
    ctx = request.app[CONTEXT_KEY]
    outcome = Outcome()
    until: datetime | None = getattr(body, "until", None)
    async with ctx.pool.acquire() as conn, conn.transaction():
        alert = await staff_repo.get_alert(conn, who, alert_id, lock=True)
        if alert is None:
            raise NotFoundError("no such alert")
        updated = await ctx.changes.staff_action(
            conn, alert, name, who.actor,
            note=getattr(body, "note", None), assignee=getattr(body, "assignee", None),
            until=until, outcome=outcome,
        )  # fmt: skip
    (shown,) = await _named(request, who, [present(updated, full=True)])
    return _json(shown)


async def openapi(_: web.Request) -> web.Response:
    return _json(document())


def make_app(health: Health, metrics: AlertsMetrics, context: AlertsContext) -> web.Application:
    app = ops_app(health, metrics)
    app.middlewares.append(errors)
    app[CONTEXT_KEY] = context
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_get("/api/alerts/{alert_id}", get_alert)
    app.router.add_post("/api/alerts/{alert_id}/{action:acknowledge|resolve|assign|snooze}", action)
    inbox.add_routes(app)
    return app
