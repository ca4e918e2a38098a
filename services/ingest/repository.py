"""SQL of ingest's own tables (see ``migrations/``). Functions take a connection; callers own
the transaction (every write of one request or one raw batch happens in one transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import orjson

from services.ingest.errors import ConflictError
from services.ingest.handlers import Prepared
from shared.xapi import VOIDED_VERB, Profile

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: a plain connection or one borrowed from a pool
    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


#: longest wait for a pooled connection on a request path: a database that is away or hanging
#: then answers 503 (the TimeoutError is retriable) instead of holding the request
ACQUIRE_TIMEOUT_SECONDS = 5.0


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the outbox relay of ``schema``."""
    return f"{schema}_outbox"


@dataclass
class StoreResult:
    inserted: list[Prepared] = field(default_factory=list)
    duplicates: list[Prepared] = field(default_factory=list)


#: one round trip: the archive rows, their outbox events (in the batch's order, so the relay
#: publishes them in that order), the NOTIFY that wakes the relay (delivered at commit), and,
#: for the rows actually inserted, the learners, changed display names and voided statements.
#: See migration 0003; a stored id with other content raises SQLSTATE ``SK409``. The bodies
#: arrive as JSON text (``Prepared.body``), cast to jsonb by the server.
_STORE_STATEMENTS = (
    "SELECT * FROM store_statements($1, $2, $3::uuid[], $4::text[]::jsonb[], $5::text[],"
    " $6::text[], $7::text[], $8::uuid[], $9::timestamptz[], $10::text[], $11::bytea[],"
    " $12::bytea[], $13, $14::text[], $15::text[], $16::text[], $17::uuid[], $18)"
)
_CONFLICT_SQLSTATE = "SK409"


async def store_statements(
    conn: Conn, tenant: str, items: Sequence[Prepared], channel: str, notify: str
) -> StoreResult:
    """Archive ``items`` and queue their events in the outbox, idempotently.

    A statement whose id is stored already with equal content is a duplicate (no new row, no
    new event); with different content it is a :class:`ConflictError` (nothing of the call is
    kept; a caller's transaction must then roll back). One statement, so atomic on its own: a
    transaction is only needed to combine it with other writes.
    """
    result = StoreResult()
    first: dict[uuid.UUID, Prepared] = {}
    fresh: list[Prepared] = []
    for item in items:
        previous = first.get(item.statement_id)
        if previous is None:
            first[item.statement_id] = item
            fresh.append(item)
        elif previous.content_hash != item.content_hash:
            raise ConflictError(
                f"statement {item.statement_id} is sent twice with different content",
                rule="id.conflict",
            )
        else:
            result.duplicates.append(item)
    if not fresh:
        return result
    try:
        rows = await conn.fetch(
            _STORE_STATEMENTS,
            tenant,
            channel,
            [p.statement_id for p in fresh],
            [p.body for p in fresh],
            [p.content_hash for p in fresh],
            [p.actor.learner_key for p in fresh],
            [p.verb_id for p in fresh],
            [p.event_id for p in fresh],
            [p.stored for p in fresh],
            # JSON text: a list per row would read as a second array dimension
            [
                orjson.dumps([d.as_json() for d in p.deviations]).decode() if p.deviations else None
                for p in fresh
            ],
            [p.key for p in fresh],
            [p.envelope for p in fresh],
            notify,
            [p.actor.ifi_kind for p in fresh],
            [p.actor.ifi_value for p in fresh],
            [p.actor.display_name for p in fresh],
            [p.voids for p in fresh],
            VOIDED_VERB,
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != _CONFLICT_SQLSTATE:
            raise
        raise ConflictError(
            f"statement {uuid.UUID(exc.detail)} exists with different content",
            rule="id.conflict",
        ) from None
    inserted_ids = {r[0] for r in rows}
    result.duplicates += [p for p in fresh if p.statement_id not in inserted_ids]
    result.inserted = [p for p in fresh if p.statement_id in inserted_ids]
    return result


async def store_attachments(
    conn: Conn, tenant: str, parts: Sequence[tuple[str, str, bytes]]
) -> None:
    """Keep attachment payloads ``(sha2, content type, bytes)``; one copy per tenant and hash."""
    if parts:
        await conn.executemany(
            "INSERT INTO attachments (tenant, sha2, content_type, content)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [(tenant, sha2, ctype, data) for sha2, ctype, data in parts],
        )


async def learner_names(conn: Conn, tenant: str, keys: Sequence[str]) -> dict[str, str]:
    """Display names of the tenant's learners among ``keys`` (those with one)."""
    rows = await conn.fetch(
        "SELECT learner_key, display_name FROM learners"
        " WHERE tenant = $1 AND learner_key = ANY($2::text[]) AND display_name IS NOT NULL",
        tenant,
        list(keys),
    )
    return {r["learner_key"]: r["display_name"] for r in rows}


async def fetch_statement(
    conn: Conn, tenant: str, statement_id: uuid.UUID, *, voided: bool
) -> tuple[dict[str, Any], datetime] | None:
    """The stored statement and its ``stored`` time; a voided one only when ``voided``."""
    row = await conn.fetchrow(
        "SELECT body, stored FROM statements"
        " WHERE tenant = $1 AND statement_id = $2 AND voided = $3",
        tenant,
        statement_id,
        voided,
    )
    if row is None:
        return None
    return row["body"], row["stored"]


_LIST = (
    "SELECT body, stored, statement_id FROM statements WHERE tenant = $1 AND NOT voided"
    " AND ($2::timestamptz IS NULL OR (stored, statement_id) {cmp} ($2, $3::uuid))"
    " ORDER BY stored {order}, statement_id {order} LIMIT $4"
)
_LIST_ASC = _LIST.format(cmp=">", order="ASC")
_LIST_DESC = _LIST.format(cmp="<", order="DESC")


async def list_statements(
    conn: Conn,
    tenant: str,
    *,
    limit: int,
    ascending: bool,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[tuple[dict[str, Any], datetime, uuid.UUID]]:
    """Up to ``limit`` statements of ``tenant`` that are not voided, by ``stored`` (newest
    first unless ``ascending``), starting after the ``(stored, id)`` cursor ``after``."""
    rows = await conn.fetch(
        _LIST_ASC if ascending else _LIST_DESC,
        tenant,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [(r["body"], r["stored"], r["statement_id"]) for r in rows]


# --- tenant settings ---------------------------------------------------------------------------


async def fetch_profile(conn: Conn, tenant: str) -> Profile:
    value = await conn.fetchval(
        "SELECT validation_profile FROM tenant_settings WHERE tenant = $1", tenant
    )
    return Profile(value) if value is not None else Profile.STRICT


async def set_profile(conn: Conn, tenant: str, profile: Profile) -> None:
    await conn.execute(
        "INSERT INTO tenant_settings (tenant, validation_profile) VALUES ($1, $2)"
        " ON CONFLICT (tenant) DO UPDATE SET validation_profile = EXCLUDED.validation_profile,"
        " updated_at = now()",
        tenant,
        str(profile),
    )


async def list_profiles(conn: Conn) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT tenant, validation_profile FROM tenant_settings ORDER BY tenant"
    )
    return [(r["tenant"], r["validation_profile"]) for r in rows]


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialRow:
    tenant: str
    name: str
    salt: bytes
    secret_hash: bytes
    n: int
    r: int
    p: int
    revoked: bool


async def fetch_credential(conn: Conn, tenant: str, name: str) -> CredentialRow | None:
    row = await conn.fetchrow(
        "SELECT tenant, name, salt, secret_hash, scrypt_n, scrypt_r, scrypt_p, revoked"
        " FROM credentials WHERE tenant = $1 AND name = $2",
        tenant,
        name,
    )
    if row is None:
        return None
    return CredentialRow(
        row["tenant"],
        row["name"],
        bytes(row["salt"]),
        bytes(row["secret_hash"]),
        row["scrypt_n"],
        row["scrypt_r"],
        row["scrypt_p"],
        row["revoked"],
    )


async def insert_credential(conn: Conn, row: CredentialRow) -> bool:
    """False when the tenant already has a credential of that name."""
    status = await conn.execute(
        "INSERT INTO credentials (tenant, name, salt, secret_hash, scrypt_n, scrypt_r, scrypt_p)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        row.tenant,
        row.name,
        row.salt,
        row.secret_hash,
        row.n,
        row.r,
        row.p,
    )
    return status.endswith(" 1")


async def list_credentials(conn: Conn, tenant: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT tenant, name, revoked, created_at, revoked_at FROM credentials"
        " WHERE $1::text IS NULL OR tenant = $1 ORDER BY tenant, name",
        tenant,
    )
    return [dict(r) for r in rows]


async def revoke_credential(conn: Conn, tenant: str, name: str) -> bool:
    status = await conn.execute(
        "UPDATE credentials SET revoked = true, revoked_at = now()"
        " WHERE tenant = $1 AND name = $2 AND NOT revoked",
        tenant,
        name,
    )
    return status.endswith(" 1")
