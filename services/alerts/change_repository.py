"""SQL of alert changes, set-based: a batch of detector signals locks its alerts in one
statement, reads the latest resolutions it needs in one, then writes the alerts it changed and
opened and records all its changes (history, outbox, deliveries, NOTIFYs) in one
(:mod:`services.alerts.changes`). Callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.alerts.repository import Conn

#: (tenant, learner_key, kind, competency): one alert that is not resolved at a time
AlertKey = tuple[str, str, str, str]


def _columns(keys: Sequence[AlertKey]) -> list[list[str]]:
    return [[k[i] for k in keys] for i in range(4)]


async def lock_active(conn: Conn, keys: Sequence[AlertKey]) -> dict[AlertKey, dict[str, Any]]:
    """The alerts that are not resolved for ``keys``, locked for update (in id order)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT a.* FROM alerts a
        JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[])
            AS k(tenant, learner_key, kind, competency)
          ON a.tenant = k.tenant AND a.learner_key = k.learner_key AND a.kind = k.kind
         AND a.competency = k.competency
        WHERE a.status <> 'resolved'
        ORDER BY a.id
        FOR UPDATE OF a
        """,
        *_columns(keys),
    )
    return {(r["tenant"], r["learner_key"], r["kind"], r["competency"]): dict(r) for r in rows}


async def last_resolutions(conn: Conn, keys: Sequence[AlertKey]) -> dict[AlertKey, datetime]:
    """The latest resolution of each of ``keys`` that has one."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT k.tenant, k.learner_key, k.kind, k.competency,
               (SELECT max(a.resolved_at) FROM alerts a
                WHERE a.tenant = k.tenant AND a.learner_key = k.learner_key AND a.kind = k.kind
                  AND a.competency = k.competency AND a.status = 'resolved') AS at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
            AS k(tenant, learner_key, kind, competency)
        """,
        *_columns(keys),
    )
    return {
        (r["tenant"], r["learner_key"], r["kind"], r["competency"]): r["at"]
        for r in rows
        if r["at"] is not None
    }


#: what the stream changes in an alert (besides ``updated_at`` and ``version``)
_INSERTED = (
    "id", "tenant", "learner_key", "kind", "competency", "programme", "business_unit",
    "severity", "support", "status", "team", "evidence", "signals", "first_seen_at",
    "last_seen_at", "resolved_at", "resolution", "version",
)  # fmt: skip
_INSERT_TYPES = (
    "uuid", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text",
    "jsonb", "integer", "timestamptz", "timestamptz", "timestamptz", "text", "integer",
)  # fmt: skip
_UPDATED = (
    "id", "severity", "support", "status", "evidence", "signals", "last_seen_at",
    "resolved_at", "resolution", "version",
)  # fmt: skip
_UPDATE_TYPES = (
    "uuid", "text", "text", "text", "jsonb", "integer", "timestamptz", "timestamptz", "text",
    "integer",
)  # fmt: skip


def _unnest(names: Sequence[str], types: Sequence[str], start: int) -> str:
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=start))
    return f"unnest({arrays}) AS u({', '.join(names)})"


# The alerts a batch of signals changed and opened, as they are after it, for
# :func:`record_changes` (its parameters from $14). Updates first: an alert the batch resolved
# leaves its place (one alert not resolved per key) to the one it opened after; the insert
# reads ``updated`` (count >= 0 always holds) so it runs once the update is complete.
_FIRST_UPDATED = 14
_FIRST_INSERTED = _FIRST_UPDATED + len(_UPDATED)
_SETS = ", ".join(f"{c} = u.{c}" for c in _UPDATED[1:])
_UPDATE_FROM = _unnest(_UPDATED, _UPDATE_TYPES, _FIRST_UPDATED)
_INSERT_FROM = _unnest(_INSERTED, _INSERT_TYPES, _FIRST_INSERTED)
_SAVE_ALERTS = (
    f"updated AS (UPDATE alerts a SET {_SETS}, updated_at = now()"  # noqa: S608 - our own names
    f" FROM {_UPDATE_FROM} WHERE a.id = u.id RETURNING 1),"
    f" inserted AS (INSERT INTO alerts ({', '.join(_INSERTED)}) SELECT u.* FROM {_INSERT_FROM}"
    " WHERE (SELECT count(*) FROM updated) >= 0)"
)


# One round trip for all the changes of a batch, in order: the history entries, the outbox
# events, one delivery per active webhook of each alert's team, and the NOTIFYs that wake the
# relay and the delivery worker (each channel passed only while the transaction has not
# notified it: PostgreSQL folds identical notifications of a transaction anyway).
# Data-modifying CTEs run exactly once whether or not the main query reads them; rows get
# their ids (bigserial) in the order of the ORDER BY.
_RECORD_CHANGES = """
WITH {save}c AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::jsonb[], $8::text[], $9::bytea[], $10::bytea[], $11::text[])
        WITH ORDINALITY
        AS c(alert_id, event_id, action, actor, from_status, to_status, details, tenant,
             msg_key, envelope, team, ord)
), history AS (
    INSERT INTO alert_history (alert_id, event_id, action, actor, from_status, to_status, details)
    SELECT alert_id, event_id, action, actor, from_status, to_status, details FROM c ORDER BY ord
), queued AS (
    INSERT INTO outbox (event_id, tenant, msg_key, envelope)
    SELECT event_id, tenant, msg_key, envelope FROM c ORDER BY ord
    ON CONFLICT (event_id) DO NOTHING
), hooks AS (
    INSERT INTO deliveries (webhook_id, event_id, tenant, body)
    SELECT w.id, c.event_id, c.tenant, c.envelope
    FROM c JOIN webhooks w ON w.tenant = c.tenant AND w.team = c.team AND w.active
    ORDER BY c.ord, w.id
    ON CONFLICT (webhook_id, event_id) DO NOTHING
    RETURNING 1
)
SELECT n,
       CASE WHEN $12::text IS NOT NULL THEN pg_notify($12, '') END AS outbox_notified,
       CASE WHEN n > 0 AND $13::text IS NOT NULL THEN pg_notify($13, '') END AS hooks_notified
FROM (SELECT count(*) AS n FROM hooks) AS queued_hooks
"""
_RECORD_ONLY = _RECORD_CHANGES.format(save="")
_SAVE_AND_RECORD = _RECORD_CHANGES.format(save=_SAVE_ALERTS + ", ")


@dataclass(frozen=True)
class Change:
    """One alert change as it is recorded: history entry, event envelope, team."""

    alert_id: uuid.UUID
    event_id: uuid.UUID
    action: str
    actor: str
    from_status: str | None
    to_status: str
    details: dict[str, Any]
    tenant: str
    key: bytes
    envelope: bytes
    team: str | None


async def record_changes(
    conn: Conn,
    changes: Sequence[Change],
    *,
    outbox_channel: str | None,
    deliveries_channel: str | None,
    inserted: Sequence[dict[str, Any]] = (),
    updated: Sequence[dict[str, Any]] = (),
) -> int:
    """Write ``changes`` in order (history, outbox, deliveries) and notify the given channels
    (the deliveries one only if a delivery was queued); returns the deliveries queued. In the
    same statement, first: the alerts a batch of signals opened (``inserted``) and changed
    (``updated``, rows locked by :func:`lock_active`) as they are after the batch."""
    if not changes:
        return 0
    save = bool(inserted or updated)
    queued = await conn.fetchval(
        _SAVE_AND_RECORD if save else _RECORD_ONLY,
        [c.alert_id for c in changes],
        [c.event_id for c in changes],
        [c.action for c in changes],
        [c.actor for c in changes],
        [c.from_status for c in changes],
        [c.to_status for c in changes],
        [c.details for c in changes],
        [c.tenant for c in changes],
        [c.key for c in changes],
        [c.envelope for c in changes],
        [c.team for c in changes],
        outbox_channel,
        deliveries_channel,
        *(([a[c] for a in updated] for c in _UPDATED) if save else ()),
        *(([a[c] for a in inserted] for c in _INSERTED) if save else ()),
    )
    return int(queued)
