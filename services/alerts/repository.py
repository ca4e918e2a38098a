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
from services.alerts.sessions import AttendanceRow

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


def outbox_channel(schema: str) -> str:
    return f"{schema}_alerts_outbox"


def deliveries_channel(schema: str) -> str:
    return f"{schema}_alerts_deliveries"


# --- stream effects ----------------------------------------------------------------------------


#: (tenant, learner_key, last activity, programme, business unit, programme since)
ActivityRow = tuple[str, str, datetime, str | None, str | None, datetime | None]

# One round trip for a batch's stream effects: the event ids claimed in ``inbox`` (``ON CONFLICT
# DO NOTHING RETURNING``: those returned are new) and, only when every one of them was new (or
# none was given), the learners' activity, the attendance at live sessions and the event clocks.
# A sub-statement reading ``claimed`` runs after it completes. Rows in a fixed order (sorted by
# the callers) for a fixed lock order.
_RECORD_EVIDENCE = """
WITH claimed AS (
    INSERT INTO inbox (event_id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING
    RETURNING event_id
), every AS (
    SELECT count(*) = cardinality($1::uuid[]) AS new FROM claimed
), activity AS (
    INSERT INTO learner_activity
        (tenant, learner_key, last_activity, programme, business_unit, programme_since)
    SELECT u.* FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                           $7::timestamptz[]) AS u
    WHERE (SELECT new FROM every)
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
), attendance AS (
    INSERT INTO session_attendance (tenant, programme, learner_key, session_id, attended_at)
    SELECT u.* FROM unnest($8::text[], $9::text[], $10::text[], $11::text[],
                           $12::timestamptz[]) AS u
    WHERE (SELECT new FROM every)
    ON CONFLICT (tenant, programme, learner_key, session_id) DO UPDATE
    SET attended_at = EXCLUDED.attended_at
    WHERE EXCLUDED.attended_at < session_attendance.attended_at
), overall AS (
    INSERT INTO event_clock (id, event_time) SELECT true, $13::timestamptz
    WHERE $13::timestamptz IS NOT NULL AND (SELECT new FROM every)
    ON CONFLICT (id) DO UPDATE
    SET event_time = GREATEST(event_clock.event_time, EXCLUDED.event_time)
), partitions AS (
    INSERT INTO partition_clock (partition, event_time)
    SELECT u.* FROM unnest($14::integer[], $15::timestamptz[]) AS u
    WHERE (SELECT new FROM every)
    ON CONFLICT (partition) DO UPDATE
    SET event_time = GREATEST(partition_clock.event_time, EXCLUDED.event_time)
)
SELECT event_id FROM claimed
"""


async def record_evidence(
    conn: Conn,
    event_ids: Sequence[uuid.UUID],
    *,
    activity: Sequence[ActivityRow],
    attendance: Sequence[AttendanceRow],
    at: datetime | None,
    clocks: dict[int, datetime],
) -> set[uuid.UUID]:
    """Record ``event_ids`` as processed and return those that were not already (the others
    are redeliveries); only when all of them were new (or none is given), in the same
    statement:

    * the learners' last evidence (``activity``: at most one row per learner, sorted; event
      time; a programme or business unit given replaces the stored one; ``programme_since``:
      the earliest of the rows' evidence naming ``programme``, kept while the programme stays);
    * the earliest attendance per learner and session (``attendance``, from
      :func:`services.alerts.sessions.attendance_rows`);
    * the largest event time applied (``at``, unless None) and the largest per partition
      (``clocks``, rows in partition order).

    When some were not new, nothing but the new ids is written: the caller records the
    effects of the new ones with ``event_ids`` empty."""
    parts = sorted(clocks)
    rows = await conn.fetch(
        _RECORD_EVIDENCE,
        list(event_ids),
        *_columns(activity, 6),
        *_columns(attendance, 5),
        at,
        parts,
        [clocks[p] for p in parts],
    )
    return {r["event_id"] for r in rows}


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


async def event_clock(conn: Conn) -> datetime | None:
    """The event clock: the low watermark over the partitions applied so far (the smallest of
    their largest event times), else the largest event time seen (updates applied without a
    partition, as the tests do)."""
    value: datetime | None = await conn.fetchval(
        "SELECT COALESCE((SELECT min(event_time) FROM partition_clock),"
        " (SELECT event_time FROM event_clock))"
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
