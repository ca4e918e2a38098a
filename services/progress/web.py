"""The query API (JSON over HTTP, tenant-scoped bearer tokens) on the shared ops app.

Every route but ``/openapi.json`` and the ops routes needs ``Authorization: Bearer <token>``;
the token's tenant scopes every query, so a token never sees another tenant's data (another
tenant's learner or programme is simply not found). Refusals are ``{"error", "reason"}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import orjson
from aiohttp import web

from services.progress import repository as repo
from services.progress.errors import ApiError, FrameworkConflictError
from services.progress.metrics import ProgressMetrics
from services.progress.openapi import OPENAPI
from shared.framework import FrameworkFileError, parse_documents
from shared.health import Health
from shared.http import Handler, ops_app

if TYPE_CHECKING:
    from services.progress.app import RegistryRefresher

MAX_FRAMEWORK_BYTES: Final = 5 * 1024 * 1024
_LEARNER: Final = re.compile(r"^[0-9a-f]{32}$")
# ``as_of`` is a time of learning activity: these bounds keep ``as_of - days`` and the database's
# date arithmetic representable (year 1 or 9999 would overflow, a 500 before this check)
MIN_AS_OF: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AS_OF: Final = datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ProgressContext:
    pool: asyncpg.Pool[Any]
    refresher: RegistryRefresher
    metrics: ProgressMetrics
    salt: str
    stalled_days: int
    stalled_attempts: int


CONTEXT_KEY: Final = web.AppKey("progress", ProgressContext)
TENANT_KEY: Final = web.RequestKey("tenant", str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        content_type="application/json",
    )


def status_of(cell: dict[str, Any] | None, stalled_before: datetime, stalled_attempts: int) -> str:
    """``not_started`` / ``mastered`` / ``stalled`` / ``in_progress`` (the SQL counts agree)."""
    if cell is None:
        return "not_started"
    if cell["mastered"]:
        return "mastered"
    last = cell.get("last_event_at")
    if cell["attempts"] >= stalled_attempts or (last is not None and last < stalled_before):
        return "stalled"
    return "in_progress"


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} must be an integer", reason="bad_parameter") from None
    if not lo <= value <= hi:
        raise ApiError(f"{name} must be in [{lo}, {hi}]", reason="bad_parameter")
    return value


def _as_of(request: web.Request) -> datetime:
    raw = request.query.get("as_of")
    if raw is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(raw)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError("as_of must be an ISO 8601 time", reason="bad_parameter") from None
    if not MIN_AS_OF <= value < MAX_AS_OF:
        raise ApiError(
            f"as_of must be in [{MIN_AS_OF.date()}, {MAX_AS_OF.date()})", reason="bad_parameter"
        )
    return value


async def _authenticate(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("a bearer token is required", status=401, reason="unauthorized")
    ctx = request.app[CONTEXT_KEY]
    async with ctx.pool.acquire() as conn:
        tenant = await repo.tenant_of_token(conn, token.strip())
    if tenant is None:
        raise ApiError("unknown or revoked token", status=401, reason="unauthorized")
    return tenant


def _refuse_nul(request: web.Request) -> None:
    """A NUL character anywhere in the path or query: PostgreSQL text cannot hold one."""
    if "\x00" in request.path or any(
        "\x00" in key or "\x00" in value for key, value in request.query.items()
    ):
        raise ApiError("parameters may not contain NUL characters", reason="bad_parameter")


@web.middleware
async def errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    api = request.path.startswith("/v1/")
    try:
        if api:
            request[TENANT_KEY] = await _authenticate(request)
            _refuse_nul(request)
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
    except ApiError as exc:
        response = _json({"error": exc.message, "reason": exc.reason}, exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="skillstream-progress"'
        return response


async def openapi(_: web.Request) -> web.Response:
    return _json(OPENAPI)


async def post_frameworks(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    tenant = request[TENANT_KEY]
    if request.content_length is not None and request.content_length > MAX_FRAMEWORK_BYTES:
        raise ApiError("framework file too large", status=413, reason="too_large")
    body = await request.content.read(MAX_FRAMEWORK_BYTES + 1)
    if len(body) > MAX_FRAMEWORK_BYTES:
        raise ApiError("framework file too large", status=413, reason="too_large")
    try:
        frameworks = parse_documents(body.decode("utf-8"))
    except (FrameworkFileError, UnicodeDecodeError) as exc:
        raise ApiError(str(exc), reason="bad_framework") from None
    if any("\\u0000" in fw.model_dump_json() for fw in frameworks):
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail on insert
        raise ApiError("a framework may not contain NUL characters", reason="bad_framework")
    others = sorted({fw.tenant for fw in frameworks} - {tenant})
    if others:
        raise ApiError(
            f"this token may only load frameworks of {tenant}", status=403, reason="forbidden"
        )
    results = []
    async with ctx.pool.acquire() as conn:
        for fw in frameworks:
            try:
                status = await repo.store_framework(conn, fw, ctx.salt)
            except FrameworkConflictError as exc:
                raise ApiError(str(exc), status=409, reason=exc.reason) from None
            results.append({"framework": fw.framework, "version": fw.version, "status": status})
    await ctx.refresher.refresh()
    created = any(r["status"] == "stored" for r in results)
    return _json({"results": results}, 201 if created else 200)


async def get_frameworks(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    async with ctx.pool.acquire() as conn:
        rows = await repo.list_frameworks(conn, request[TENANT_KEY])
    return _json({"versions": rows})


def _trend(points: list[dict[str, Any]], start: datetime) -> dict[str, dict[str, Any]]:
    by: dict[str, dict[str, Any]] = {}
    for p in points:
        entry = by.setdefault(p["competency"], {"baseline": None, "points": []})
        if p["day"] <= start.date():
            entry["baseline"] = p["mastery"]
        else:
            entry["points"].append({"day": p["day"].isoformat(), "mastery": p["mastery"]})
    for entry in by.values():
        first = entry["baseline"]
        if first is None and entry["points"]:
            first = entry["points"][0]["mastery"]
        last = entry["points"][-1]["mastery"] if entry["points"] else first
        entry["change"] = None if first is None or last is None else last - first
    return by


async def learner_profile(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    tenant = request[TENANT_KEY]
    learner = request.match_info["learner_key"]
    if not _LEARNER.match(learner):
        raise ApiError("a learner key is 32 lower-case hex digits", reason="bad_parameter")
    days = _int(request, "days", 30, 1, 366)
    as_of = _as_of(request)
    start = as_of - timedelta(days=days)
    async with ctx.pool.acquire() as conn:
        rows = await repo.learner_competencies(conn, tenant, learner)
        activity = await repo.learner_activity(conn, tenant, learner)
        points = await repo.mastery_trend(conn, tenant, learner, start, as_of)
    if activity is None:
        raise ApiError("no such learner", status=404, reason="not_found")
    trends = _trend(points, start)
    stalled_before = as_of - timedelta(days=ctx.stalled_days)
    seen = {r["competency"] for r in rows}
    version = ctx.refresher.registry.at(tenant, as_of)
    competencies = [
        {
            "competency": r["competency"],
            "framework": r["framework"],
            "framework_version": r["framework_version"],
            "status": status_of(r, stalled_before, ctx.stalled_attempts),
            "mastery": r["mastery"],
            "mastered": r["mastered"],
            "mastered_at": r["mastered_at"],
            "attempts": r["attempts"],
            "correct_total": r["correct_total"],
            "correct_streak": r["correct_streak"],
            "wrong_streak": r["wrong_streak"],
            "hints": r["hints"],
            "time_on_task_s": r["time_on_task_s"],
            "first_activity": r["first_event_at"],
            "last_activity": r["last_event_at"],
            "trend": trends.get(r["competency"], {"baseline": None, "points": [], "change": None}),
        }
        for r in rows
    ]
    if version is not None:
        competencies += [
            {"competency": c.id, "status": "not_started", "mastery": None, "attempts": 0}
            for c in version.framework.competencies
            if c.id not in seen
        ]
    return _json(
        {
            "learner_key": learner,
            "as_of": as_of,
            "days": days,
            "activity": activity,
            "competencies": competencies,
        }
    )


async def skills_map(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    tenant = request[TENANT_KEY]
    programme_id = request.match_info["programme"]
    cohort = request.query.get("cohort")
    limit = _int(request, "limit", 50, 1, 500)
    after = request.query.get("after", "")
    as_of = _as_of(request)
    stalled_before = as_of - timedelta(days=ctx.stalled_days)
    async with ctx.pool.acquire() as conn:
        programme = await repo.programme(conn, tenant, programme_id)
        if programme is None:
            raise ApiError("no such programme", status=404, reason="not_found")
        competencies: list[str] = list(programme["competencies"])
        learners = await repo.programme_page(
            conn, tenant, programme_id, cohort=cohort, after=after, limit=limit
        )
        cells = await repo.cells(conn, tenant, learners, competencies)
        counts = await repo.status_counts(
            conn,
            tenant,
            programme_id,
            cohort=cohort,
            stalled_attempts=ctx.stalled_attempts,
            stalled_before=stalled_before,
        )
    by = {(c["learner_key"], c["competency"]): c for c in cells}
    rows = [
        {
            "learner_key": lk,
            "cells": {
                cid: {
                    "status": status_of(by.get((lk, cid)), stalled_before, ctx.stalled_attempts),
                    "mastery": by[(lk, cid)]["mastery"] if (lk, cid) in by else None,
                }
                for cid in competencies
            },
        }
        for lk in learners
    ]
    return _json(
        {
            "programme": programme_id,
            "cohort": cohort,
            "as_of": as_of,
            "competencies": competencies,
            "counts": {
                c["competency"]: {
                    k: c[k] for k in ("mastered", "in_progress", "not_started", "stalled")
                }
                for c in counts
            },
            "learners": rows,
            "next": learners[-1] if len(learners) == limit else None,
        }
    )


async def outcomes(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    tenant = request[TENANT_KEY]
    programme_id = request.query.get("programme")
    async with ctx.pool.acquire() as conn:
        if programme_id is not None and await repo.programme(conn, tenant, programme_id) is None:
            raise ApiError("no such programme", status=404, reason="not_found")
        per_competency, weekly = await repo.outcomes(conn, tenant, programme_id)
    units: dict[str, dict[str, Any]] = {}
    for r in per_competency:
        unit = units.setdefault(r["business_unit"], {"competencies": [], "active_per_week": []})
        unit["competencies"].append(
            {
                "competency": r["competency"],
                "learners": r["learners"],
                "reached_mastery": r["reached"],
                "share_mastered": r["reached"] / r["learners"] if r["learners"] else 0.0,
                "median_time_to_competency_s": r["median_s"],
                "p90_time_to_competency_s": r["p90_s"],
            }
        )
    for w in weekly:
        unit = units.setdefault(w["business_unit"], {"competencies": [], "active_per_week": []})
        unit["active_per_week"].append({"week": w["week"].isoformat(), "active": w["active"]})
    return _json({"programme": programme_id, "business_units": units})


def make_app(health: Health, metrics: ProgressMetrics, context: ProgressContext) -> web.Application:
    app = ops_app(health, metrics)
    app.middlewares.append(errors_and_auth)
    app[CONTEXT_KEY] = context
    app.router.add_get("/openapi.json", openapi)
    app.router.add_post("/v1/frameworks", post_frameworks)
    app.router.add_get("/v1/frameworks", get_frameworks)
    app.router.add_get("/v1/learners/{learner_key}", learner_profile)
    app.router.add_get("/v1/programmes/{programme}/skills-map", skills_map)
    app.router.add_get("/v1/outcomes", outcomes)
    return app
