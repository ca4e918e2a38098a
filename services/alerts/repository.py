"""SQL of the alerts schema (see ``migrations/``). Functions take a connection; callers own the
transaction. Staff-facing queries (listing, tokens, admin) are in :mod:`staff_repository`; the
set-based writes of alert changes in :mod:`change_repository`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from services.alerts.routing import Rule

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


def outbox_channel(schema: str) -> str:
    return f"{schema}_alerts_outbox"


def deliveries_channel(schema: str) -> str:
    return f"{schema}_alerts_deliveries"


# --- stream effects ----------------------------------------------------------------------------


async def claim_events(conn: Conn, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Record ``event_ids`` as processed; returns those that were not already (the others
    are redeliveries)."""
    rows = await conn.fetch(
        "INSERT INTO inbox (event_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING"
        " RETURNING event_id",
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


async def touch_activities(
    conn: Conn,
    rows: Sequence[tuple[str, str, datetime, str | None, str | None, datetime | None]],
) -> None:
    """The learners' last evidence (event time; a programme or business unit given replaces
    the stored one) in one statement; ``rows`` are ``(tenant, learner_key, at, programme,
    business_unit, programme_since)``, at most one per learner (``programme_since``: the
    earliest of the rows' evidence naming ``programme``, kept while the programme stays)."""
    if not rows:
        return
    tenants, keys, ats, programmes, units, sinces = (
        list(column) for column in zip(*rows, strict=True)
    )
    await conn.execute(
        """
        INSERT INTO learner_activity
            (tenant, learner_key, last_activity, programme, business_unit, programme_since)
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                             $6::timestamptz[])
        ON CONFLICT (tenant, learner_key) DO UPDATE SET
            last_activity = GREATEST(learner_activity.last_activity, EXCLUDED.last_activity),
            programme = COALESCE(EXCLUDED.programme, learner_activity.programme),
            business_unit = COALESCE(EXCLUDED.business_unit, learner_activity.business_unit),
            programme_since = CASE
                WHEN EXCLUDED.programme IS NULL THEN learner_activity.programme_since
                WHEN EXCLUDED.programme IS DISTINCT FROM learner_activity.programme
                    THEN EXCLUDED.programme_since
                ELSE LEAST(learner_activity.programme_since, EXCLUDED.programme_since)
            END
        """,
        tenants,
        keys,
        ats,
        programmes,
        units,
        sinces,
    )


async def advance_clocks(conn: Conn, at: datetime, clocks: dict[int, datetime]) -> None:
    """The largest event time applied (``at``) and the largest per partition (``clocks``),
    in one statement (partition rows sorted: a fixed lock order)."""
    parts = sorted(clocks)
    await conn.execute(
        """
        WITH overall AS (
            INSERT INTO event_clock (id, event_time) VALUES (true, $1::timestamptz)
            ON CONFLICT (id) DO UPDATE
            SET event_time = GREATEST(event_clock.event_time, EXCLUDED.event_time)
        )
        INSERT INTO partition_clock (partition, event_time)
        SELECT * FROM unnest($2::integer[], $3::timestamptz[])
        ON CONFLICT (partition) DO UPDATE
        SET event_time = GREATEST(partition_clock.event_time, EXCLUDED.event_time)
        """,
        at,
        parts,
        [clocks[p] for p in parts],
    )


async def event_clock(conn: Conn) -> datetime | None:
    """The event clock: the low watermark over the partitions applied so far (the smallest of
    their largest event times), else the largest event time seen (updates applied without a
    partition, as the tests do)."""
    value: datetime | None = await conn.fetchval(
        "SELECT COALESCE((SELECT min(event_time) FROM partition_clock),"
        " (SELECT event_time FROM event_clock))"
    )
    return value


async def last_resolved_at(
    conn: Conn, tenant: str, learner_key: str, kind: str, competency: str
) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        """
        SELECT max(resolved_at) FROM alerts
        WHERE tenant = $1 AND learner_key = $2 AND kind = $3 AND competency = $4
          AND status = 'resolved'
        """,
        tenant,
        learner_key,
        kind,
        competency,
    )
    return value


async def update_alert(conn: Conn, alert_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE alerts SET {sets}, updated_at = now(), version = version + 1"  # noqa: S608
        " WHERE id = $1 RETURNING *",
        alert_id,
        *values.values(),
    )
    assert row is not None
    return dict(row)


async def history(conn: Conn, alert_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, event_id, action, actor, from_status, to_status, details, at"
        " FROM alert_history WHERE alert_id = $1 ORDER BY id",
        alert_id,
    )
    return [dict(r) for r in rows]


async def routing_rules(conn: Conn, tenant: str) -> list[Rule]:
    rows = await conn.fetch(
        "SELECT id, priority, team, business_unit, programme, kind, min_severity"
        " FROM routing_rules WHERE tenant = $1",
        tenant,
    )
    return [Rule(**dict(r)) for r in rows]


async def detector_overrides(
    conn: Conn, tenant: str, programme: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The tenant-wide and the programme's partial settings (``None`` when absent)."""
    rows = await conn.fetch(
        "SELECT programme, settings FROM detector_settings"
        " WHERE tenant = $1 AND programme = ANY($2::text[])",
        tenant,
        ["", programme or ""],
    )
    found = {r["programme"]: r["settings"] for r in rows}
    return found.get(""), (found.get(programme) if programme else None)


# --- scanner -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silent:
    tenant: str
    learner_key: str
    last_activity: datetime
    programme: str | None
    business_unit: str | None


async def silent_learners(conn: Conn, before: datetime, limit: int) -> list[Silent]:
    """Learners enrolled in a programme, last seen before ``before``, with no inactivity alert
    open, and (when the programme's calendar is known) whose programme runs at ``before``."""
    rows = await conn.fetch(
        """
        SELECT a.tenant, a.learner_key, a.last_activity, a.programme, a.business_unit
        FROM learner_activity a
        LEFT JOIN programmes p ON p.tenant = a.tenant AND p.programme = a.programme
        WHERE a.last_activity < $1 AND a.programme IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM alerts x
              WHERE x.tenant = a.tenant AND x.learner_key = a.learner_key
                AND x.kind = 'inactivity' AND x.status <> 'resolved')
        ORDER BY a.last_activity
        LIMIT $2
        """,
        before,
        limit,
    )
    return [Silent(**dict(r)) for r in rows]


async def programme_running(conn: Conn, tenant: str, programme: str, at: datetime) -> bool:
    """False only when the programme's calendar is known and ``at`` is outside it."""
    row = await conn.fetchrow(
        "SELECT starts_on, ends_on FROM programmes WHERE tenant = $1 AND programme = $2",
        tenant,
        programme,
    )
    if row is None:
        return True
    return bool(row["starts_on"] <= at.date() <= row["ends_on"])


async def snoozes_due(conn: Conn, now: datetime, limit: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT id FROM alerts WHERE status = 'snoozed' AND snoozed_until <= $1"
        " ORDER BY snoozed_until LIMIT $2",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def lock_alert(conn: Conn, alert_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
    return dict(row) if row else None
