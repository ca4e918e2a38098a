"""Reading statements back: ``GET /xapi/statements`` by ``statementId`` or
``voidedStatementId`` (with ``Last-Modified``), or the unfiltered listing (a StatementResult,
newest first, ``limit`` at a time, with a ``more`` link). Every answer carries
``X-Experience-API-Consistent-Through``. Filtered queries answer 501."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final

from aiohttp import web

from services.ingest.auth import Principal
from services.ingest.bodies import XapiRequest
from services.ingest.canonical import format_timestamp
from services.ingest.context import IngestContext, json_response, only_params, statement_id_param
from services.ingest.errors import BadRequestError, NotFoundError, NotImplementedYetError
from services.ingest.repository import ACQUIRE_TIMEOUT_SECONDS, fetch_statement, list_statements
from shared.xapi import XapiVersion

_QUERY_PARAMS: Final = frozenset(
    {"agent", "verb", "activity", "registration", "related_activities", "related_agents",
     "since", "until", "limit", "ascending", "format", "attachments"}
)  # fmt: skip
_SINGLE_EXTRAS: Final = frozenset({"format", "attachments"})
#: parameters of the unfiltered listing (``cursor`` is ours: the ``more`` link)
_LISTING_PARAMS: Final = frozenset({"limit", "ascending", "format", "attachments", "cursor"})
LISTING_MAX: Final = 100


async def get_statements(
    ctx: IngestContext, who: Principal, _: XapiVersion, xreq: XapiRequest
) -> web.Response:
    params = xreq.params
    consistent = {"X-Experience-API-Consistent-Through": format_timestamp(datetime.now(UTC))}
    single = [p for p in ("statementId", "voidedStatementId") if p in params]
    if not single:
        only_params(ctx, who.tenant, xreq, set(_QUERY_PARAMS) | {"cursor"})
        if set(params) - _LISTING_PARAMS:
            raise NotImplementedYetError(
                "statement queries with filters are not implemented; GET one statement by "
                "statementId or voidedStatementId, or the unfiltered listing (limit, ascending)",
                rule="query.not_implemented",
            )
        return await _listing(ctx, who, xreq, consistent)
    if len(single) > 1 or set(params) - set(single) - _SINGLE_EXTRAS:
        raise BadRequestError(
            "statementId or voidedStatementId go alone (format and attachments aside)",
            rule="params.exclusive",
        )
    param = single[0]
    sid = statement_id_param(params[param], param)
    async with ctx.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
        found = await fetch_statement(conn, who.tenant, sid, voided=param == "voidedStatementId")
    if found is None:
        error = NotFoundError(f"no statement {sid}", rule="not_found")
        return json_response(error.body(), error.status, consistent)
    body, stored = found
    return json_response(
        body,
        headers={
            "Last-Modified": format_datetime(stored.astimezone(UTC), usegmt=True),
            **consistent,
        },
    )


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise BadRequestError(f"{name} must be true or false", rule=f"{name}.invalid")
    return value == "true"


def _cursor(value: str | None) -> tuple[datetime, uuid.UUID] | None:
    if value is None:
        return None
    try:
        stored, sid = base64.urlsafe_b64decode(value.encode()).decode().split("|")
        return datetime.fromisoformat(stored), uuid.UUID(sid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequestError("cursor is not one this LRS issued", rule="cursor.invalid") from None


async def _listing(
    ctx: IngestContext, who: Principal, xreq: XapiRequest, headers: dict[str, str]
) -> web.Response:
    """The unfiltered statement listing: a StatementResult of the tenant's statements that are
    not voided, newest ``stored`` first (``ascending=true``: oldest first), ``limit`` at a time
    (0 or absent: :data:`LISTING_MAX`), with a ``more`` link while more remain."""
    params = xreq.params
    if params.get("format", "exact") != "exact" or _flag(params, "attachments"):
        raise NotImplementedYetError(
            "only format=exact without attachments is implemented", rule="query.not_implemented"
        )
    try:
        limit = int(params.get("limit", "0"))
    except ValueError:
        raise BadRequestError("limit must be an integer >= 0", rule="limit.invalid") from None
    if limit < 0:
        raise BadRequestError("limit must be an integer >= 0", rule="limit.invalid")
    limit = min(limit or LISTING_MAX, LISTING_MAX)
    ascending = _flag(params, "ascending")
    async with ctx.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
        rows = await list_statements(
            conn,
            who.tenant,
            limit=limit + 1,
            ascending=ascending,
            after=_cursor(params.get("cursor")),
        )
    more = ""
    if len(rows) > limit:
        rows = rows[:limit]
        _, stored, sid = rows[-1]
        token = base64.urlsafe_b64encode(f"{stored.isoformat()}|{sid}".encode()).decode()
        query = f"limit={limit}&ascending={str(ascending).lower()}&cursor={token}"
        more = f"/xapi/statements?{query}"
    return json_response(
        {"statements": [body for body, _, _ in rows], "more": more}, headers=headers
    )
