"""``POST /directory/names``: learner display names for the alerts service, by learner key.

Raw identifiers and names stay in ingest (``learners``); downstream services see salted learner
keys only. The alerts service shows a learner's name to the support staff whose token allows
it, and asks for it here. The route exists only when ``INGEST_DIRECTORY_TOKEN`` is set, and
answers only a caller presenting that token (``Authorization: Bearer <token>``, compared in
constant time). It returns names, never the email address or account behind a key, and only
within the tenant asked for.

Request: ``{"tenant": "acme", "learner_keys": ["k1", ...]}`` (at most 500 keys). Answer:
``{"names": {"k1": "Ada Lovelace"}}``: keys without a known name are left out.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any, Final

import asyncpg
import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from services.ingest.errors import BadRequestError, UnauthorizedError
from services.ingest.repository import ACQUIRE_TIMEOUT_SECONDS, learner_names

MAX_KEYS: Final = 500
PATH: Final = "/directory/names"

Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class NamesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    learner_keys: list[Key] = Field(max_length=MAX_KEYS)


@dataclass(frozen=True)
class Directory:
    pool: asyncpg.Pool[Any]
    token: str


DIRECTORY_KEY: Final = web.AppKey("directory", Directory)


def _authorised(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


async def names(request: web.Request) -> web.Response:
    ctx = request.app[DIRECTORY_KEY]
    if not _authorised(request.headers.get("Authorization"), ctx.token):
        raise UnauthorizedError("a valid directory token is required", rule="directory.token")
    try:
        asked = NamesRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequestError(f"{where}: {first['msg']}", rule="directory.request") from None
    async with ctx.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
        found = await learner_names(conn, asked.tenant, sorted(set(asked.learner_keys)))
    return web.Response(body=orjson.dumps({"names": found}), content_type="application/json")


def add_routes(app: web.Application, pool: asyncpg.Pool[Any], token: str) -> None:
    """The route on ingest's app (its error middleware answers the 400/401s)."""
    app[DIRECTORY_KEY] = Directory(pool, token)
    app.router.add_post(PATH, names)
