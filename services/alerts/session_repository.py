"""SQL of the live-session tables (``migrations/0004_live_sessions.sql``): the schedule loaded by
the CLI, the learners expected and the scanner's walk (the attendance the stream records is
written with the batch's other effects, :func:`services.alerts.repository.record_evidence`).
Functions take a connection; callers own the transaction. The rules are in
:mod:`services.alerts.sessions`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from services.alerts.sessions import Learner, Session, Walk
from shared.framework import Programme

if TYPE_CHECKING:
    from services.alerts.repository import Conn


async def enrol_from_evidence(conn: Conn) -> None:
    """Learners whose evidence names a programme with programme-wide sessions are expected at
    them from their first such evidence (``learner_activity.programme_since``)."""
    await conn.execute(
        """
        INSERT INTO session_learners (tenant, programme, learner_key, since)
        SELECT a.tenant, a.programme, a.learner_key, a.programme_since
        FROM learner_activity a
        WHERE a.programme IS NOT NULL AND a.programme_since IS NOT NULL
          AND EXISTS (SELECT 1 FROM live_sessions s
                      WHERE s.tenant = a.tenant AND s.programme = a.programme
                        AND s.cohort IS NULL)
        ORDER BY 1, 2, 3
        ON CONFLICT (tenant, programme, learner_key) DO UPDATE SET since = EXCLUDED.since
        WHERE session_learners.since IS DISTINCT FROM EXCLUDED.since
        """
    )


async def load_programme(
    conn: Conn,
    tenant: str,
    programme: Programme,
    members: Mapping[str, str],
    check_from: datetime | None,
) -> dict[str, int]:
    """Make the alerts schema's copy of ``programme`` the file's: its calendar and business
    unit, its sessions (those no longer in the file are removed), its cohorts' learners
    (``members``: learner key -> cohort; a learner no longer listed keeps their walk but no
    cohort). ``check_from``: sessions that ended before it are not checked for the learners
    whose walk has not started.
    Returns counts."""
    await conn.execute(
        "INSERT INTO programmes (tenant, programme, starts_on, ends_on, business_unit)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, programme) DO UPDATE SET"
        " starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on,"
        " business_unit = EXCLUDED.business_unit",
        tenant,
        programme.id,
        programme.start,
        programme.end,
        programme.business_unit,
    )
    sessions = {s.id: s for s in programme.sessions}  # a repeated id: the last one
    await conn.execute(
        "DELETE FROM live_sessions WHERE tenant = $1 AND programme = $2"
        " AND NOT session_id = ANY($3::text[])",
        tenant,
        programme.id,
        list(sessions),
    )
    await conn.executemany(
        "INSERT INTO live_sessions (tenant, programme, session_id, cohort, starts_at, ends_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, programme, session_id) DO UPDATE"
        " SET cohort = EXCLUDED.cohort, starts_at = EXCLUDED.starts_at,"
        " ends_at = EXCLUDED.ends_at",
        [(tenant, programme.id, s.id, s.cohort, s.start, s.end) for s in sessions.values()],
    )
    await conn.execute(
        "UPDATE session_learners SET cohort = NULL WHERE tenant = $1 AND programme = $2"
        " AND cohort IS NOT NULL AND NOT learner_key = ANY($3::text[])",
        tenant,
        programme.id,
        list(members),
    )
    keys = sorted(members)
    await conn.execute(
        """
        INSERT INTO session_learners (tenant, programme, learner_key, cohort, checked_through)
        SELECT $1, $2, k, c, $5 FROM unnest($3::text[], $4::text[]) AS m (k, c)
        ON CONFLICT (tenant, programme, learner_key) DO UPDATE SET cohort = EXCLUDED.cohort,
            checked_through = COALESCE(session_learners.checked_through, EXCLUDED.checked_through)
        """,
        tenant,
        programme.id,
        keys,
        [members[k] for k in keys],
        check_from,
    )
    return {"sessions": len(sessions), "learners": len(keys)}


async def candidates(
    conn: Conn,
    ref: datetime,
    due_before: datetime,
    after: tuple[str, str, str],
    limit: int,
) -> list[tuple[str, str, str]]:
    """``(tenant, programme, learner_key)`` of learners with a session to decide: one they are
    expected at that ended after their walk stopped and either ended before ``due_before`` (the
    reference clock less the shortest grace) or they attended; keyset-paged after ``after``."""
    rows = await conn.fetch(
        """
        SELECT l.tenant, l.programme, l.learner_key FROM session_learners l
        WHERE (l.tenant, l.programme, l.learner_key) > ($3, $4, $5)
          AND EXISTS (
              SELECT 1 FROM live_sessions s
              WHERE s.tenant = l.tenant AND s.programme = l.programme
                AND (s.cohort IS NULL OR s.cohort = l.cohort)
                AND (l.cohort IS NOT NULL OR l.since IS NULL OR s.ends_at > l.since)
                AND s.ends_at > COALESCE(l.checked_through, '-infinity')
                AND s.ends_at <= $1
                AND (s.ends_at <= $2 OR EXISTS (
                    SELECT 1 FROM session_attendance a
                    WHERE a.tenant = l.tenant AND a.programme = l.programme
                      AND a.learner_key = l.learner_key AND a.session_id = s.session_id)))
        ORDER BY l.tenant, l.programme, l.learner_key
        LIMIT $6
        """,
        ref,
        due_before,
        *after,
        limit,
    )
    return [(r["tenant"], r["programme"], r["learner_key"]) for r in rows]


async def lock_learner(conn: Conn, tenant: str, programme: str, learner_key: str) -> Learner:
    row = await conn.fetchrow(
        "SELECT cohort, since, checked_through, missed FROM session_learners"
        " WHERE tenant = $1 AND programme = $2 AND learner_key = $3 FOR UPDATE",
        tenant,
        programme,
        learner_key,
    )
    assert row is not None  # rows are never deleted
    walk = Walk(row["checked_through"], tuple(row["missed"]))
    return Learner(tenant, programme, learner_key, row["cohort"], row["since"], walk)


async def schedule(conn: Conn, tenant: str, programme: str) -> list[Session]:
    rows = await conn.fetch(
        "SELECT session_id, starts_at, ends_at, cohort FROM live_sessions"
        " WHERE tenant = $1 AND programme = $2 ORDER BY ends_at, session_id",
        tenant,
        programme,
    )
    return [Session(r["session_id"], r["starts_at"], r["ends_at"], r["cohort"]) for r in rows]


@dataclass(frozen=True)
class WalkInputs:
    """What a learner's walk reads besides the schedule (:func:`walk_inputs`)."""

    attended: dict[str, datetime]  # session id -> attendance event time
    resolved_at: datetime | None  # the learner's latest ``missed_sessions`` resolution
    business_unit: str | None


async def walk_inputs(conn: Conn, learner: Learner, kind: str) -> WalkInputs:
    """In one statement: the learner's attendance at the programme's sessions that ended after
    the walk stopped (session id -> event time), the latest resolution of their ``kind`` alert
    (no competency), and the programme's business unit from the framework file, else the
    learner's last one."""
    rows = await conn.fetch(
        """
        SELECT x.resolved_at, x.business_unit, a.session_id, a.attended_at
        FROM (SELECT
                (SELECT max(resolved_at) FROM alerts
                 WHERE tenant = $1 AND learner_key = $3 AND kind = $5 AND competency = ''
                   AND status = 'resolved') AS resolved_at,
                COALESCE(
                  (SELECT business_unit FROM programmes WHERE tenant = $1 AND programme = $2),
                  (SELECT business_unit FROM learner_activity
                   WHERE tenant = $1 AND learner_key = $3)) AS business_unit) AS x
        LEFT JOIN (
            SELECT a.session_id, a.attended_at FROM session_attendance a
            JOIN live_sessions s USING (tenant, programme, session_id)
            WHERE a.tenant = $1 AND a.programme = $2 AND a.learner_key = $3
              AND s.ends_at > COALESCE($4, '-infinity'::timestamptz)
        ) AS a ON true
        """,
        learner.tenant,
        learner.programme,
        learner.learner_key,
        learner.walk.checked_through,
        kind,
    )
    first = rows[0]  # one row at least (the LEFT JOIN keeps x)
    return WalkInputs(
        {r["session_id"]: r["attended_at"] for r in rows if r["session_id"] is not None},
        first["resolved_at"],
        first["business_unit"],
    )


async def save_walk(conn: Conn, learner: Learner, walk: Walk) -> None:
    await conn.execute(
        "UPDATE session_learners SET checked_through = $4, missed = $5"
        " WHERE tenant = $1 AND programme = $2 AND learner_key = $3",
        learner.tenant,
        learner.programme,
        learner.learner_key,
        walk.checked_through,
        list(walk.missed),
    )
