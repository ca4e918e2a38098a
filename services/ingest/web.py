"""The xAPI HTTP resources: ``/xapi/statements`` (POST, PUT here; GET by id or an unfiltered
listing in :mod:`services.ingest.reads`), ``/xapi/about`` and ``/xapi/activities`` (GET by
activityId), mounted on the shared ops app (``/healthz``, ``/readyz``, ``/metrics``). The
other xAPI resources (agents, the document resources) answer 501 to a well-formed request, and
400 without ``X-Experience-API-Version``.

Every response carries ``X-Experience-API-Version`` (the request's version family, else the
configured fallback); every refusal is JSON
``{"error", "rule", "violations": [{"path", "rule", "message"}]}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import web

from services.ingest.auth import REALM, Principal
from services.ingest.bodies import AttachmentPart, XapiRequest, media_type, read_request
from services.ingest.context import (
    CONTEXT_KEY,
    IngestContext,
    json_response,
    only_params,
    reject,
    statement_id_param,
)
from services.ingest.errors import (
    BadRequestError,
    IngestError,
    InvalidStatementError,
    NotImplementedYetError,
)
from services.ingest.handlers import (
    VERSION_HEADER,
    Channel,
    Prepared,
    authority_for,
    parse_version,
    prepare,
    prepare_all,
    response_version,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.reads import get_statements
from services.ingest.signatures import check_signatures
from shared.errors import is_retriable
from shared.health import Health
from shared.http import Handler, ops_app
from shared.xapi import (
    Deviation,
    Profile,
    Statement,
    StatementValidationError,
    XapiVersion,
    parse_statement,
    parse_statements_profiled,
)
from shared.xapi.primitives import IRI_PATTERN

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS: Final = ["1.0.3", "2.0.0"]
#: xAPI resources this intake service does not implement (answered 501)
_OTHER_RESOURCES: Final = frozenset(
    {"activities/profile", "activities/state", "agents", "agents/profile"}
)
_IRI: Final = re.compile(IRI_PATTERN)
_BODY_TYPES: Final = frozenset({"application/json", "multipart/mixed"})
#: seconds a client is asked to wait before retrying a 503 (database or broker away)
RETRY_AFTER_SECONDS: Final = 5
VERSION_KEY: Final = web.RequestKey("xapi_version", XapiVersion)


@web.middleware
async def xapi_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`IngestError` into its JSON 4xx answer (401s name the auth scheme; a 408
    closes the connection), and a retriable failure (database away or hanging, a timeout)
    into 503 with ``Retry-After``."""
    try:
        return await handler(request)
    except IngestError as exc:
        headers = {"WWW-Authenticate": REALM} if exc.status == 401 else None
        response = json_response(exc.body(), exc.status, headers)
        if exc.status == 408:
            response.force_close()  # the rest of the body may never come: do not wait for it
        return response
    except Exception as exc:
        if not is_retriable(exc):
            raise
        log.warning(
            "request failed on an unavailable dependency; answered 503",
            extra={"path": request.path, "error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        body = {
            "error": "the service is temporarily unavailable; retry later",
            "rule": "unavailable",
            "violations": [],
        }
        return json_response(body, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def version_header(request: web.Request, response: web.StreamResponse) -> None:
    version = request.get(VERSION_KEY)
    if version is None:
        version = request.app[CONTEXT_KEY].fallback_version
    response.headers[VERSION_HEADER] = response_version(version)


async def about(_: web.Request) -> web.Response:
    return json_response({"version": SUPPORTED_VERSIONS})


def _version(request: web.Request, headers: Mapping[str, str]) -> XapiVersion:
    version = parse_version(headers.get(VERSION_HEADER))
    request[VERSION_KEY] = version
    return version


async def statements(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT_KEY]
    if request.method == "POST" and "method" in request.query:
        xreq = await read_request(request, ctx.max_body, ctx.body_timeout)
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
        xreq = await read_request(request, ctx.max_body, ctx.body_timeout)
    handler = _METHODS[xreq.method]
    return await handler(ctx, principal, version, xreq)


# --- methods -----------------------------------------------------------------------------------


async def _profile(ctx: IngestContext, tenant: str) -> Profile:
    return Profile.STRICT if ctx.profiles is None else await ctx.profiles.get(tenant)


def _parse(
    ctx: IngestContext,
    tenant: str,
    version: XapiVersion,
    body: bytes,
    *,
    single: bool,
    profile: Profile = Profile.STRICT,
) -> list[tuple[Statement, tuple[Deviation, ...]]]:
    try:
        if single and profile is Profile.STRICT:
            return [(parse_statement(body, version=version), ())]
        data: Any = body
        if single:
            data = orjson.loads(body) if body.strip()[:1] == b"{" else body
            if not isinstance(data, dict):
                return [(parse_statement(body, version=version), ())]  # raises
        return parse_statements_profiled(data, version=version, profile=profile)
    except orjson.JSONDecodeError:
        return [(parse_statement(body, version=version), ())]  # raises the json.invalid error
    except StatementValidationError as exc:
        rule = exc.violations[0].rule if exc.violations else "invalid"
        reject(ctx, tenant, rule)
        raise InvalidStatementError(
            "the request breaks xAPI statement rules", rule=rule, violations=exc.violations
        ) from None


def _attachments(
    statements: Sequence[Statement], parts: Sequence[AttachmentPart]
) -> list[tuple[str, str, bytes]]:
    """Match multipart attachment parts with the statements' attachment metadata."""
    declared = {a.sha2.lower() for s in statements for a in s.attachments or ()}
    needed = {a.sha2.lower() for s in statements for a in s.attachments or () if a.file_url is None}
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


def _checked(
    ctx: IngestContext,
    tenant: str,
    version: XapiVersion,
    statements: Sequence[Statement],
    parts: Sequence[AttachmentPart],
) -> list[tuple[str, str, bytes]]:
    """The multipart parts matched with the statements' attachments, signatures checked. Done
    before the archive's wait, so the parsed models can be let go during it: every pass of the
    garbage collector meanwhile would scan them (about 5% of ingest's CPU in batches of 100)."""
    try:
        attachments = _attachments(statements, parts)
        check_signatures(statements, parts, version)
    except IngestError as exc:
        reject(ctx, tenant, exc.rule)
        raise
    return attachments


async def _archive(
    ctx: IngestContext,
    tenant: str,
    prepared: Sequence[Prepared],
    attachments: list[tuple[str, str, bytes]],
) -> None:
    try:
        await ctx.archive.accept(tenant, prepared, Channel.HTTP, attachments)
    except IngestError as exc:
        reject(ctx, tenant, exc.rule)
        raise
    except asyncpg.DataError as exc:  # e.g. a \u0000 in a string, which jsonb cannot hold
        reject(ctx, tenant, "storage.value")
        raise BadRequestError(
            f"the statement holds a value that cannot be stored: {exc}", rule="storage.value"
        ) from None


async def post_statements(
    ctx: IngestContext, who: Principal, version: XapiVersion, xreq: XapiRequest
) -> web.Response:
    only_params(ctx, who.tenant, xreq, set())
    profile = await _profile(ctx, who.tenant)
    parsed = _parse(ctx, who.tenant, version, xreq.body, single=False, profile=profile)
    statements = [stmt for stmt, _ in parsed]
    prepared = prepare_all(
        statements,
        tenant=who.tenant,
        version=version,
        stored=datetime.now(UTC),
        authority=authority_for(who.tenant, who.name),
        salt=ctx.salt,
        deviations=[found for _, found in parsed],
    )
    attachments = _checked(ctx, who.tenant, version, statements, xreq.parts)
    del parsed, statements  # not needed while the archive works (see _checked)
    await _archive(ctx, who.tenant, prepared, attachments)
    return json_response([str(p.statement_id) for p in prepared])


async def put_statement(
    ctx: IngestContext, who: Principal, version: XapiVersion, xreq: XapiRequest
) -> web.Response:
    only_params(ctx, who.tenant, xreq, {"statementId"})
    raw_id = xreq.params.get("statementId")
    if not raw_id:
        reject(ctx, who.tenant, "statementId.missing")
        raise BadRequestError("PUT needs the statementId parameter", rule="statementId.missing")
    sid = statement_id_param(raw_id, "statementId")
    profile = await _profile(ctx, who.tenant)
    [(stmt, found)] = _parse(ctx, who.tenant, version, xreq.body, single=True, profile=profile)
    if stmt.id is not None and uuid.UUID(stmt.id) != sid:
        reject(ctx, who.tenant, "statementId.mismatch")
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
        deviations=found,
    )
    attachments = _checked(ctx, who.tenant, version, [stmt], xreq.parts)
    del stmt  # not needed while the archive works (see _checked)
    await _archive(ctx, who.tenant, [prepared], attachments)
    return web.Response(status=204)


async def activities(request: web.Request) -> web.Response:
    """``GET /xapi/activities?activityId=``: the Activity object. No canonical definitions
    are kept, so it is the id alone (the spec's answer for an Activity without one)."""
    ctx = request.app[CONTEXT_KEY]
    _version(request, request.headers)
    await ctx.auth.authenticate(request.headers.get("Authorization"))
    unknown = set(request.query) - {"activityId"}
    if unknown:
        raise BadRequestError(
            f"unexpected parameters: {', '.join(sorted(unknown))}", rule="params.unknown"
        )
    activity_id = request.query.get("activityId")
    if not activity_id:
        raise BadRequestError("activityId is required", rule="activityId.missing")
    if not _IRI.match(activity_id):
        raise BadRequestError("activityId must be an IRI", rule="activityId.invalid")
    return json_response({"objectType": "Activity", "id": activity_id})


async def other_resource(request: web.Request) -> web.Response:
    """The xAPI resources ingest does not serve: 400 without a version header (as every
    resource but about), 401 without credentials, else 501."""
    ctx = request.app[CONTEXT_KEY]
    _version(request, request.headers)
    await ctx.auth.authenticate(request.headers.get("Authorization"))
    raise NotImplementedYetError(
        f"the xAPI resource /xapi/{request.match_info['resource']} is not implemented by "
        "this intake service",
        rule="resource.not_implemented",
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
    app.router.add_get("/xapi/activities", activities)
    resource = "/xapi/{resource:" + "|".join(sorted(_OTHER_RESOURCES)) + "}"
    for method in ("GET", "PUT", "POST", "DELETE"):
        app.router.add_route(method, resource, other_resource)
    return app
