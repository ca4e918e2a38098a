"""SQL of progress's own tables (see ``migrations/``). Functions take a connection; callers own
the transaction. Query functions are read-only and always filter by tenant first."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import orjson

from services.progress.errors import FrameworkConflictError
from services.progress.frameworks import content_hash, document_of
from shared.framework import Framework, ref_to_key

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

PROJECTION_TABLES = (
    "learner_competency",
    "mastery_daily",
    "learner_activity",
    "activity_weeks",
    "watermarks",
)


# --- frameworks --------------------------------------------------------------------------------


async def store_framework(conn: Conn, fw: Framework, salt: str) -> Literal["stored", "unchanged"]:
    """Store a new version (immutable), then refresh the tenant's programme membership from its
    newest version. Raises :class:`FrameworkConflictError` for a changed version, a taken
    effective time, or a version that would apply before the newest one (backdating)."""
    digest = content_hash(fw)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"framework:{fw.tenant}")
        existing = await conn.fetchrow(
            "SELECT content_hash FROM frameworks WHERE tenant=$1 AND framework=$2 AND version=$3",
            fw.tenant,
            fw.framework,
            fw.version,
        )
        if existing is not None:
            if existing["content_hash"] != digest:
                raise FrameworkConflictError(
                    f"{fw.tenant}/{fw.framework} version {fw.version} is already stored with "
                    "other content; versions are immutable: load a new version"
                )
            return "unchanged"
        newest = await conn.fetchval(
            "SELECT max(effective_from) FROM frameworks WHERE tenant=$1", fw.tenant
        )
        if newest is not None and fw.effective_from <= newest:
            raise FrameworkConflictError(
                f"version {fw.version} of {fw.tenant} would apply from {fw.effective_from}, not "
                f"after the newest version's {newest}: that would rewrite history (rebuild instead)"
            )
        await conn.execute(
            "INSERT INTO frameworks (tenant, framework, version, effective_from, document,"
            " content_hash) VALUES ($1, $2, $3, $4, $5, $6)",
            fw.tenant,
            fw.framework,
            fw.version,
            fw.effective_from,
            document_of(fw),
            digest,
        )
        await _refresh_programmes(conn, fw, salt)
    return "stored"


async def _refresh_programmes(conn: Conn, fw: Framework, salt: str) -> None:
    """Membership tables follow the newest version (the caller checked ``fw`` is the newest)."""
    await conn.execute("DELETE FROM programme_learners WHERE tenant=$1", fw.tenant)
    await conn.execute("DELETE FROM programmes WHERE tenant=$1", fw.tenant)
    await conn.executemany(
        "INSERT INTO programmes (tenant, programme, name, business_unit, start_date, end_date,"
        " competencies) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (fw.tenant, p.id, p.name, p.business_unit, p.start, p.end, list(p.competencies))
            for p in fw.programmes
        ],
    )
    rows = {
        (p.id, c.id, ref_to_key(ref, salt)): p.business_unit
        for p in fw.programmes
        for c in p.cohorts
        for ref in c.learners
    }
    await conn.executemany(
        "INSERT INTO programme_learners (tenant, programme, cohort, learner_key, business_unit)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(fw.tenant, p, c, lk, bu) for (p, c, lk), bu in rows.items()],
    )


async def frameworks_fingerprint(conn: Conn) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT coalesce(max(seq), 0) AS s, count(*) AS n FROM frameworks")
    assert row is not None
    return int(row["s"]), int(row["n"])


async def load_frameworks(conn: Conn) -> list[Framework]:
    rows = await conn.fetch("SELECT document FROM frameworks ORDER BY tenant, effective_from")
    return [Framework.model_validate(r["document"]) for r in rows]


async def list_frameworks(conn: Conn, tenant: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT framework, version, effective_from, content_hash, loaded_at FROM frameworks"
        " WHERE tenant=$1 ORDER BY effective_from",
        tenant,
    )
    return [dict(r) for r in rows]


# --- API tokens --------------------------------------------------------------------------------


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def insert_token(conn: Conn, tenant: str, name: str, token: str) -> bool:
    status = await conn.execute(
        "INSERT INTO api_tokens (token_hash, tenant, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant, name) DO NOTHING",
        token_hash(token),
        tenant,
        name,
    )
    return bool(status.endswith(" 1"))


async def revoke_token(conn: Conn, tenant: str, name: str) -> bool:
    status = await conn.execute(
        "UPDATE api_tokens SET revoked=true WHERE tenant=$1 AND name=$2 AND NOT revoked",
        tenant,
        name,
    )
    return bool(status.endswith(" 1"))


async def tenant_of_token(conn: Conn, token: str) -> str | None:
    value = await conn.fetchval(
        "SELECT tenant FROM api_tokens WHERE token_hash=$1 AND NOT revoked", token_hash(token)
    )
    return None if value is None else str(value)


# --- projection --------------------------------------------------------------------------------


# Rows are sent as one JSON array of objects per table (orjson, in C) and unpacked by
# ``json_to_recordset``: binding 16 typed arrays costs asyncpg several microseconds per value
# in Python-level type checks, the JSON a fraction of that; values are exact (floats are
# written shortest-round-trip and read back to the same double; times with microseconds).
# The parameter is text (``$1::text::json``), so a connection's json codec does not apply.
_UPSERT_COMPETENCY = """
INSERT INTO learner_competency (tenant, learner_key, competency, framework, framework_version,
    mastery, mastered, attempts, correct_total, correct_streak, wrong_streak, hints,
    time_on_task_s, first_event_at, last_event_at, mastered_at)
SELECT * FROM json_to_recordset($1::text::json) AS r(tenant text, learner_key text, competency text,
    framework text, framework_version int, mastery float8, mastered bool, attempts int,
    correct_total int, correct_streak int, wrong_streak int, hints int, time_on_task_s float8,
    first_event_at timestamptz, last_event_at timestamptz, mastered_at timestamptz)
ON CONFLICT (tenant, learner_key, competency) DO UPDATE SET
    framework = EXCLUDED.framework, framework_version = EXCLUDED.framework_version,
    mastery = EXCLUDED.mastery, mastered = EXCLUDED.mastered, attempts = EXCLUDED.attempts,
    correct_total = EXCLUDED.correct_total, correct_streak = EXCLUDED.correct_streak,
    wrong_streak = EXCLUDED.wrong_streak, hints = EXCLUDED.hints,
    time_on_task_s = EXCLUDED.time_on_task_s, first_event_at = EXCLUDED.first_event_at,
    last_event_at = EXCLUDED.last_event_at, mastered_at = EXCLUDED.mastered_at
"""

_UPSERT_DAILY = """
INSERT INTO mastery_daily (tenant, learner_key, competency, day, mastery)
SELECT * FROM json_to_recordset($1::text::json)
    AS r(tenant text, learner_key text, competency text, day date, mastery float8)
ON CONFLICT (tenant, learner_key, competency, day) DO UPDATE SET mastery = EXCLUDED.mastery
"""

_UPSERT_ACTIVITY = """
INSERT INTO learner_activity (tenant, learner_key, events, first_event_at, last_event_at)
SELECT * FROM json_to_recordset($1::text::json) AS r(tenant text, learner_key text, events bigint,
    first_event_at timestamptz, last_event_at timestamptz)
ON CONFLICT (tenant, learner_key) DO UPDATE SET events = EXCLUDED.events,
    first_event_at = EXCLUDED.first_event_at, last_event_at = EXCLUDED.last_event_at
"""

_INSERT_WEEKS = """
INSERT INTO activity_weeks (tenant, learner_key, week)
SELECT * FROM json_to_recordset($1::text::json) AS r(tenant text, learner_key text, week date)
ON CONFLICT DO NOTHING
"""


def _json(rows: Sequence[Any]) -> str:
    return orjson.dumps(rows).decode()


async def upsert_projection(
    conn: Conn,
    competencies: Sequence[Any],
    daily: Sequence[Any],
    activity: Sequence[Any],
    weeks: Sequence[Any],
) -> None:
    """Absolute values keyed by their natural keys (each key at most once per call).

    Each row is an object orjson encodes with the table's column names as keys: a dict or a
    dataclass (:class:`~services.progress.outcome.CompetencyRow`, :class:`DailyRow`, ...)."""
    if competencies:
        await conn.execute(_UPSERT_COMPETENCY, _json(competencies))
    if daily:
        await conn.execute(_UPSERT_DAILY, _json(daily))
    if activity:
        await conn.execute(_UPSERT_ACTIVITY, _json(activity))
    if weeks:
        await conn.execute(_INSERT_WEEKS, _json(weeks))


async def clear_projection(conn: Conn) -> None:
    """Empty the projection and its watermarks (the rebuild starts from nothing)."""
    for table in PROJECTION_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE true")  # noqa: S608 - fixed names


# --- queries -----------------------------------------------------------------------------------


async def learner_competencies(conn: Conn, tenant: str, learner: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM learner_competency WHERE tenant=$1 AND learner_key=$2 ORDER BY competency",
        tenant,
        learner,
    )
    return [dict(r) for r in rows]


async def learner_activity(conn: Conn, tenant: str, learner: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT events, first_event_at, last_event_at FROM learner_activity"
        " WHERE tenant=$1 AND learner_key=$2",
        tenant,
        learner,
    )
    return None if row is None else dict(row)


async def mastery_trend(
    conn: Conn, tenant: str, learner: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Daily points in ``(start, end]`` plus, per competency, the last point at or before
    ``start`` (the baseline of the trend)."""
    rows = await conn.fetch(
        """
        SELECT competency, day, mastery FROM mastery_daily
        WHERE tenant=$1 AND learner_key=$2 AND day > $3::date AND day <= $4::date
        UNION ALL
        SELECT DISTINCT ON (competency) competency, day, mastery FROM mastery_daily
        WHERE tenant=$1 AND learner_key=$2 AND day <= $3::date
        ORDER BY competency, day
        """,
        tenant,
        learner,
        start,
        end,
    )
    return [dict(r) for r in rows]


async def programme(conn: Conn, tenant: str, programme_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM programmes WHERE tenant=$1 AND programme=$2", tenant, programme_id
    )
    return None if row is None else dict(row)


async def programme_page(
    conn: Conn, tenant: str, programme_id: str, *, cohort: str | None, after: str, limit: int
) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT learner_key FROM programme_learners WHERE tenant=$1 AND programme=$2"
        " AND ($3::text IS NULL OR cohort=$3) AND learner_key > $4 ORDER BY learner_key LIMIT $5",
        tenant,
        programme_id,
        cohort,
        after,
        limit,
    )
    return [str(r["learner_key"]) for r in rows]


async def cells(
    conn: Conn, tenant: str, learners: Sequence[str], competencies: Sequence[str]
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT learner_key, competency, mastery, mastered, attempts, last_event_at"
        " FROM learner_competency WHERE tenant=$1 AND learner_key = ANY($2)"
        " AND competency = ANY($3)",
        tenant,
        list(learners),
        list(competencies),
    )
    return [dict(r) for r in rows]


_STATUS_COUNTS = """
WITH l AS (
    SELECT DISTINCT learner_key FROM programme_learners
    WHERE tenant=$1 AND programme=$2 AND ($3::text IS NULL OR cohort=$3)),
c AS (SELECT unnest(competencies) AS competency FROM programmes WHERE tenant=$1 AND programme=$2)
SELECT c.competency,
    count(*) FILTER (WHERE s.learner_key IS NULL) AS not_started,
    count(*) FILTER (WHERE s.mastered) AS mastered,
    count(*) FILTER (WHERE NOT s.mastered
        AND (s.attempts >= $4 OR coalesce(s.last_event_at < $5, false))) AS stalled,
    count(*) FILTER (WHERE NOT s.mastered
        AND NOT (s.attempts >= $4 OR coalesce(s.last_event_at < $5, false))) AS in_progress
FROM l CROSS JOIN c
LEFT JOIN learner_competency s
    ON s.tenant=$1 AND s.learner_key=l.learner_key AND s.competency=c.competency
GROUP BY c.competency ORDER BY c.competency
"""


async def status_counts(
    conn: Conn,
    tenant: str,
    programme_id: str,
    *,
    cohort: str | None,
    stalled_attempts: int,
    stalled_before: datetime,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _STATUS_COUNTS, tenant, programme_id, cohort, stalled_attempts, stalled_before
    )
    return [dict(r) for r in rows]


_OUTCOMES = """
WITH lc AS (
    SELECT DISTINCT pl.business_unit, pl.learner_key, c.competency
    FROM programme_learners pl
    JOIN programmes p ON p.tenant=pl.tenant AND p.programme=pl.programme
    CROSS JOIN LATERAL unnest(p.competencies) AS c(competency)
    WHERE pl.tenant=$1 AND ($2::text IS NULL OR pl.programme=$2))
SELECT lc.business_unit, lc.competency, count(*) AS learners,
    count(s.mastered_at) AS reached,
    percentile_cont(0.5) WITHIN GROUP
        (ORDER BY extract(epoch FROM s.mastered_at - s.first_event_at)) AS median_s,
    percentile_cont(0.9) WITHIN GROUP
        (ORDER BY extract(epoch FROM s.mastered_at - s.first_event_at)) AS p90_s
FROM lc LEFT JOIN learner_competency s
    ON s.tenant=$1 AND s.learner_key=lc.learner_key AND s.competency=lc.competency
GROUP BY lc.business_unit, lc.competency ORDER BY lc.business_unit, lc.competency
"""

_WEEKLY = """
WITH l AS (
    SELECT DISTINCT business_unit, learner_key FROM programme_learners
    WHERE tenant=$1 AND ($2::text IS NULL OR programme=$2))
SELECT l.business_unit, w.week, count(*) AS active
FROM l JOIN activity_weeks w ON w.tenant=$1 AND w.learner_key=l.learner_key
GROUP BY l.business_unit, w.week ORDER BY l.business_unit, w.week
"""


async def outcomes(
    conn: Conn, tenant: str, programme_id: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    per_competency = await conn.fetch(_OUTCOMES, tenant, programme_id)
    weekly = await conn.fetch(_WEEKLY, tenant, programme_id)
    return [dict(r) for r in per_competency], [dict(r) for r in weekly]
