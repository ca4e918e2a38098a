"""What the xAPI resources share: the service's context (archive, authentication, pool,
metrics, profiles) kept on the aiohttp app, and the small helpers every resource uses (JSON
answers, counting a refusal, checking parameters)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import web

from services.ingest.archive import Archive
from services.ingest.auth import Authenticator
from services.ingest.bodies import XapiRequest
from services.ingest.errors import BadRequestError
from services.ingest.handlers import Channel
from services.ingest.metrics import IngestMetrics
from services.ingest.profiles import TenantProfiles
from shared.xapi import XapiVersion


@dataclass(frozen=True)
class IngestContext:
    archive: Archive
    auth: Authenticator
    pool: asyncpg.Pool[Any]
    metrics: IngestMetrics
    salt: str
    max_body: int
    #: seconds a request body may take to arrive (then 408)
    body_timeout: float = 10.0
    profiles: TenantProfiles | None = None
    #: version sent back when the request did not (validly) say which it speaks
    fallback_version: XapiVersion = XapiVersion.V2_0


CONTEXT_KEY: Final = web.AppKey("ingest", IngestContext)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def reject(ctx: IngestContext, tenant: str, rule: str) -> None:
    ctx.metrics.rejected.labels(tenant, Channel.HTTP, rule).inc()


def only_params(ctx: IngestContext, tenant: str, xreq: XapiRequest, allowed: set[str]) -> None:
    unknown = sorted(set(xreq.params) - allowed)
    if unknown:
        reject(ctx, tenant, "params.unknown")
        raise BadRequestError(f"unexpected parameters: {', '.join(unknown)}", rule="params.unknown")


def statement_id_param(value: str, param: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequestError(f"{param} is not a UUID", rule=f"{param}.invalid") from None
