"""The xAPI HTTP resources: ``/xapi/statements`` (POST, PUT, GET by id) and ``/xapi/about``,
mounted on the shared ops app (``/healthz``, ``/readyz``, ``/metrics``).

Every response carries ``X-Experience-API-Version``; every refusal is JSON
``{"error", "rule", "violations": [{"path", "rule", "message"}]}`` with a 4xx status.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import web

from services.ingest.archive import Archive
from services.ingest.auth import REALM, Authenticator, Principal
from services.ingest.bodies import AttachmentPart, XapiRequest, media_type, read_request
from services.ingest.errors import (
    BadRequestError,
    IngestError,
    InvalidStatementError,
    NotFoundError,
    NotImplementedYetError,
)
from services.ingest.handlers import (
    VERSION_HEADER,
    Channel,
    Prepared,
    authority_for,
    format_timestamp,
    parse_version,
    prepare,
    prepare_all,
    response_version,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.repository import fetch_statement
from shared.health import Health
from shared.http import Handler, ops_app
from shared.xapi import (
    Statement,
    StatementValidationError,
    XapiVersion,
    parse_statement,
    parse_statements,
)

SUPPORTED_VERSIONS: Final = ["1.0.3", "2.0.0"]
_QUERY_PARAMS: Final = frozenset(
    {"agent", "verb", "activity", "registration", "related_activities", "related_agents",
     "since", "until", "limit", "ascending", "format", "attachments"}
)  # fmt: skip
_SINGLE_EXTRAS: Final = frozenset({"format", "attachments"})
_BODY_TYPES: Final = frozenset({"application/json", "multipart/mixed"})


@dataclass(frozen=True)
class IngestContext:
    archive: Archive
    auth: Authenticator
    pool: asyncpg.Pool[Any]
    metrics: IngestMetrics
    salt: str
    max_body: int


CONTEXT_KEY: Final = web.AppKey("ingest", IngestContext)
VERSION_KEY: Final = web.RequestKey("xapi_version", XapiVersion)


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


@web.middleware
async def xapi_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`IngestError` into its JSON 4xx answer (401s name the auth scheme)."""
    try:
        return await handler(request)
    except IngestError as exc:
        headers = {"WWW-Authenticate": REALM} if exc.status == 401 else None
        return _json(exc.body(), exc.status, headers)


async def version_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[VERSION_HEADER] = response_version(request.get(VERSION_KEY))


async def about(_: web.Request) -> web.Response:
    return _json({"version": SUPPORTED_VERSIONS})


def _version(request: web.Request, headers: Mapping[str, str]) -> XapiVersion:
    version = parse_version(headers.get(VERSION_HEADER))
    request[VERSION_KEY] = version
    return version


async def statements(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    if request.method == "POST" and "method" in request.query:
        xreq = await read_request(request, ctx.max_body)
        version = _version(request, xreq.headers)
        if version is not XapiVersion.V1_0_3:
            raise BadRequestError(
                "the alternate request syntax exists in xAPI 1.0.3 only", rule="alternate.version"
            )
        principal = await ctx.auth.authenticate(xreq.headers.get("Authorization"))
    else:
        version = _version(request, request.headers)
        principal = await ctx.auth.authenticate(request.headers.get("Authorization"))
        if request.method in ("POST", "PUT"):
            ctype = media_type(request.headers.get("Content-Type"))
            if ctype not in _BODY_TYPES:
                raise BadRequestError(
                    f"Content-Type must be application/json or multipart/mixed, not {ctype!r}",
                    rule="content_type",
                )
        xreq = await read_request(request, ctx.max_body)
    handler = _METHODS[xreq.method]
    return await handler(ctx, principal, version, xreq)


# --- methods -----------------------------------------------------------------------------------


def _reject(ctx: IngestContext, tenant: str, rule: str) -> None:
    ctx.metrics.rejected.labels(tenant, Channel.HTTP, rule).inc()


def _only_params(ctx: IngestContext, tenant: str, xreq: XapiRequest, allowed: set[str]) -> None:
    unknown = sorted(set(xreq.params) - allowed)
    if unknown:
        _reject(ctx, tenant, "params.unknown")
        raise BadRequestError(f"unexpected parameters: {', '.join(unknown)}", rule="params.unknown")


def _parse(
    ctx: IngestContext, tenant: str, version: XapiVersion, body: bytes, *, single: bool
) -> list[Statement]:
    try:
        if single:
            return [parse_statement(body, version=version)]
        return parse_statements(body, version=version)
    except StatementValidationError as exc:
        rule = exc.violations[0].rule if exc.violations else "invalid"
        _reject(ctx, tenant, rule)
        raise InvalidStatementError(
            "the request breaks xAPI statement rules", rule=rule, violations=exc.violations
        ) from None


def _attachments(
    prepared: Sequence[Prepared], parts: Sequence[AttachmentPart]
) -> list[tuple[str, str, bytes]]:
    """Match multipart attachment parts with the statements' attachment metadata."""
    declared = {a.sha2.lower() for p in prepared for a in p.statement.attachments or ()}
    needed = {
        a.sha2.lower()
        for p in prepared
        for a in p.statement.attachments or ()
        if a.file_url is None
    }
    given = {part.sha2 for part in parts}
    if needed - given:
        raise BadRequestError(
            "an attachment without fileUrl has no multipart part with its sha2",
            rule="attachment.missing_part",
        )
    if given - declared:
        raise BadRequestError(
            "a multipart part matches no attachment of the statements",
            rule="attachment.unreferenced",
        )
    return [(part.sha2, part.content_type, part.data) for part in parts]


async def _archive(
    ctx: IngestContext, tenant: str, prepared: Sequence[Prepared], parts: list[AttachmentPart]
) -> None:
    try:
        attachments = _attachments(prepared, parts)
        await ctx.archive.accept(tenant, prepared, Channel.HTTP, attachments)
    except IngestError as exc:
        _reject(ctx, tenant, exc.rule)
        raise
    except asyncpg.DataError as exc:  # e.g. a \u0000 in a string, which jsonb cannot hold
        _reject(ctx, tenant, "storage.value")
        raise BadRequestError(
            f"the statement holds a value that cannot be stored: {exc}", rule="storage.value"
        ) from None


def _statement_id(value: str, param: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequestError(f"{param} is not a UUID", rule=f"{param}.invalid") from None


async def post_statements(
    ctx: IngestContext, who: Principal, version: XapiVersion, xreq: XapiRequest
) -> web.Response:
    _only_params(ctx, who.tenant, xreq, set())
    parsed = _parse(ctx, who.tenant, version, xreq.body, single=False)
    prepared = prepare_all(
        parsed,
        tenant=who.tenant,
        version=version,
        stored=datetime.now(UTC),
        authority=authority_for(who.tenant, who.name),
        salt=ctx.salt,
    )
    await _archive(ctx, who.tenant, prepared, xreq.parts)
    return _json([str(p.statement_id) for p in prepared])


async def put_statement(
    ctx: IngestContext, who: Principal, version: XapiVersion, xreq: XapiRequest
) -> web.Response:
    _only_params(ctx, who.tenant, xreq, {"statementId"})
    raw_id = xreq.params.get("statementId")
    if not raw_id:
        _reject(ctx, who.tenant, "statementId.missing")
        raise BadRequestError("PUT needs the statementId parameter", rule="statementId.missing")
    sid = _statement_id(raw_id, "statementId")
    [stmt] = _parse(ctx, who.tenant, version, xreq.body, single=True)
    if stmt.id is not None and uuid.UUID(stmt.id) != sid:
        _reject(ctx, who.tenant, "statementId.mismatch")
        raise BadRequestError(
            "the statement's id differs from the statementId parameter",
            rule="statementId.mismatch",
        )
    prepared = prepare(
        stmt,
        tenant=who.tenant,
        version=version,
        stored=datetime.now(UTC),
        authority=authority_for(who.tenant, who.name),
        salt=ctx.salt,
        statement_id=sid,
    )
    await _archive(ctx, who.tenant, [prepared], xreq.parts)
    return web.Response(status=204)


async def get_statements(
    ctx: IngestContext, who: Principal, _: XapiVersion, xreq: XapiRequest
) -> web.Response:
    params = xreq.params
    single = [p for p in ("statementId", "voidedStatementId") if p in params]
    if not single:
        _only_params(ctx, who.tenant, xreq, set(_QUERY_PARAMS))
        raise NotImplementedYetError(
            "statement queries are not implemented; GET one statement by statementId or "
            "voidedStatementId",
            rule="query.not_implemented",
        )
    if len(single) > 1 or set(params) - set(single) - _SINGLE_EXTRAS:
        raise BadRequestError(
            "statementId or voidedStatementId go alone (format and attachments aside)",
            rule="params.exclusive",
        )
    param = single[0]
    sid = _statement_id(params[param], param)
    async with ctx.pool.acquire() as conn:
        found = await fetch_statement(conn, who.tenant, sid, voided=param == "voidedStatementId")
    if found is None:
        raise NotFoundError(f"no statement {sid}", rule="not_found")
    body, stored = found
    now = datetime.now(UTC)
    return _json(
        body,
        headers={
            "Last-Modified": format_datetime(stored.astimezone(UTC), usegmt=True),
            "X-Experience-API-Consistent-Through": format_timestamp(now),
        },
    )


Method = Callable[[IngestContext, Principal, XapiVersion, XapiRequest], Awaitable[web.Response]]
_METHODS: Final[dict[str, Method]] = {
    "POST": post_statements,
    "PUT": put_statement,
    "GET": get_statements,
}


def make_app(health: Health, metrics: IngestMetrics, context: IngestContext) -> web.Application:
    app = ops_app(health, metrics)
    app.middlewares.append(xapi_errors)
    app.on_response_prepare.append(version_header)
    app[CONTEXT_KEY] = context
    app.router.add_get("/xapi/about", about)
    app.router.add_get("/xapi/statements", statements)
    app.router.add_post("/xapi/statements", statements)
    app.router.add_put("/xapi/statements", statements)
    return app
