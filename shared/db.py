"""PostgreSQL: an asyncpg pool bound to one service's schema.

Every connection of the pool has ``search_path`` set to that schema, so a service's SQL uses
unqualified table names and a test can run the same code in a schema of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from shared.errors import ConfigError, DependencyUnavailableError

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ConfigError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    # JSON columns round-trip through orjson: faster, and the same encoder as the topics use
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            format="text",
        )


@asynccontextmanager
async def create_pool(
    dsn: str,
    schema: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A pool whose connections work in ``schema`` (created if missing) then ``public``."""
    check_schema_name(schema)
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DependencyUnavailableError(f"PostgreSQL did not answer: {exc!r}") from exc
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        server_settings={"search_path": f'"{schema}",public', "application_name": "skillstream"},
        init=_init_connection,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def ping(pool: asyncpg.Pool[Any], wait: float = 2.0) -> None:
    """Raise if the database does not answer ``SELECT 1`` within ``wait`` seconds."""
    async with pool.acquire(timeout=wait) as conn:
        await conn.fetchval("SELECT 1", timeout=wait)
