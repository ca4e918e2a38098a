"""SQL for the staff API and the admin CLI: listing and reading alerts within a token's scope,
tokens, teams, routing rules, webhooks, detector settings and programme calendars."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from services.alerts.staff import StaffPrincipal
from shared.alert_events import AlertAction

if TYPE_CHECKING:
    from services.alerts.repository import Conn

SORTS = {
    "last_seen_at": "last_seen_at",
    "first_seen_at": "first_seen_at",
    "updated_at": "updated_at",
    "created_at": "created_at",
    "kind": "kind",
    "status": "status",
    "severity": "CASE severity WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END",
}
FILTERS = ("status", "kind", "team", "business_unit", "programme", "severity", "competency")


@dataclass(frozen=True)
class Query:
    filters: dict[str, list[str]]
    learner: str | None = None
    sort: str = "-last_seen_at"
    limit: int = 50
    offset: int = 0


def _scope(who: StaffPrincipal, args: list[Any]) -> list[str]:
    args.append(who.tenant)
    where = [f"tenant = ${len(args)}"]
    if who.team is not None:
        args.append(who.team)
        where.append(f"team = ${len(args)}")
    return where


async def list_alerts(
    conn: Conn, who: StaffPrincipal, query: Query
) -> tuple[list[dict[str, Any]], int]:
    args: list[Any] = []
    where = _scope(who, args)
    for column, values in query.filters.items():
        if column not in FILTERS:
            raise ValueError(column)
        args.append(values)
        where.append(f"{column} = ANY(${len(args)}::text[])")
    if query.learner:
        args.append(query.learner)
        where.append(f"learner_key = ${len(args)}")
    descending = query.sort.startswith("-")
    order = SORTS[query.sort.lstrip("-")]
    clause = " AND ".join(where)
    # every fragment above is one of our constants; values travel as parameters
    total = await conn.fetchval(f"SELECT count(*) FROM alerts WHERE {clause}", *args)  # noqa: S608
    args += [query.limit, query.offset]
    rows = await conn.fetch(
        f"SELECT * FROM alerts WHERE {clause}"  # noqa: S608
        f" ORDER BY {order} {'DESC' if descending else 'ASC'}, id"
        f" LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    return [dict(r) for r in rows], int(total)


async def get_alert(
    conn: Conn, who: StaffPrincipal, alert_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    args: list[Any] = [alert_id]
    where = ["id = $1", *_scope(who, args)]
    sql = f"SELECT * FROM alerts WHERE {' AND '.join(where)}"  # noqa: S608
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), *args)
    return dict(row) if row else None


# --- admin ---------------------------------------------------------------------------------


async def insert_token(
    conn: Conn,
    tenant: str,
    team: str | None,
    name: str,
    token_hash: bytes,
    *,
    see_names: bool = False,
) -> bool:
    done = await conn.fetchval(
        "INSERT INTO staff_tokens (tenant, team, name, token_hash, see_names)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, name) DO NOTHING RETURNING true",
        tenant,
        team,
        name,
        token_hash,
        see_names,
    )
    return bool(done)


async def revoke_token(conn: Conn, tenant: str, name: str) -> bool:
    done = await conn.fetchval(
        "UPDATE staff_tokens SET revoked = true WHERE tenant = $1 AND name = $2 AND NOT revoked"
        " RETURNING true",
        tenant,
        name,
    )
    return bool(done)


async def upsert_team(conn: Conn, tenant: str, team: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO teams (tenant, team, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant, team) DO UPDATE SET name = EXCLUDED.name",
        tenant,
        team,
        name,
    )


async def insert_rule(conn: Conn, tenant: str, team: str, **conditions: Any) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO routing_rules (tenant, team, priority, business_unit, programme, kind,"
            " min_severity) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            tenant,
            team,
            conditions.get("priority", 100),
            conditions.get("business_unit"),
            conditions.get("programme"),
            conditions.get("kind"),
            conditions.get("min_severity"),
        )
    )


async def insert_webhook(
    conn: Conn,
    tenant: str,
    team: str,
    url: str,
    secret: str,
    *,
    actions: Sequence[AlertAction] | None = None,
) -> int:
    """A team's webhook endpoint; ``actions``: the alert actions it is sent (``None``: all)."""
    return int(
        await conn.fetchval(
            "INSERT INTO webhooks (tenant, team, url, secret, actions)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            tenant,
            team,
            url,
            secret,
            None if actions is None else list(actions),
        )
    )


async def set_detector_settings(
    conn: Conn, tenant: str, programme: str, settings: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO detector_settings (tenant, programme, settings) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant, programme) DO UPDATE SET settings = EXCLUDED.settings,"
        " updated_at = now()",
        tenant,
        programme,
        settings,
    )


async def set_programme(conn: Conn, tenant: str, programme: str, start: date, end: date) -> None:
    await conn.execute(
        "INSERT INTO programmes (tenant, programme, starts_on, ends_on) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant, programme) DO UPDATE SET starts_on = EXCLUDED.starts_on,"
        " ends_on = EXCLUDED.ends_on",
        tenant,
        programme,
        start,
        end,
    )
