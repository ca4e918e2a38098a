"""SQL of alert changes, set-based: a batch of detector signals locks its alerts and reads the
latest resolutions and routing rules it needs in one statement, then writes the alerts it
changed and opened and records all its changes (history, outbox, deliveries, NOTIFYs) in one
(:mod:`services.alerts.changes`). Callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.alerts.routing import Rule

if TYPE_CHECKING:
    from services.alerts.repository import Conn

#: (tenant, learner_key, kind, competency): one alert that is not resolved at a time
AlertKey = tuple[str, str, str, str]


def _columns(keys: Sequence[AlertKey]) -> list[list[str]]:
    return [[k[i] for k in keys] for i in range(4)]


# The alerts of a batch's keys that are not resolved, locked (in id order), one row per key with
# the key's latest resolution where a ``raise`` may need it (no alert active, or the batch also
# clears it: the cooldown) and, on the keys asking for them, their tenant's routing rules.
_LOCK_KEYS = """
WITH k AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[],
                         $6::boolean[], $7::boolean[])
        AS k(tenant, learner_key, kind, competency, raised, cleared, rules)
), locked AS (
    SELECT a.* FROM alerts a
    JOIN k ON a.tenant = k.tenant AND a.learner_key = k.learner_key AND a.kind = k.kind
     AND a.competency = k.competency
    WHERE a.status <> 'resolved'
    ORDER BY a.id
    FOR UPDATE OF a
)
SELECT k.tenant AS k_tenant, k.learner_key AS k_learner_key, k.kind AS k_kind,
       k.competency AS k_competency,
       CASE WHEN k.raised AND (l.id IS NULL OR k.cleared) THEN
           (SELECT max(r.resolved_at) FROM alerts r
            WHERE r.tenant = k.tenant AND r.learner_key = k.learner_key AND r.kind = k.kind
              AND r.competency = k.competency AND r.status = 'resolved')
       END AS k_resolved,
       CASE WHEN k.rules THEN
           (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                'id', w.id, 'priority', w.priority, 'team', w.team,
                'business_unit', w.business_unit, 'programme', w.programme, 'kind', w.kind,
                'min_severity', w.min_severity)), '[]'::jsonb)
            FROM routing_rules w WHERE w.tenant = k.tenant)
       END AS k_rules,
       l.*
FROM k LEFT JOIN locked l
  ON l.tenant = k.tenant AND l.learner_key = k.learner_key AND l.kind = k.kind
 AND l.competency = k.competency
"""
_KEY_COLUMNS = frozenset(
    {"k_tenant", "k_learner_key", "k_kind", "k_competency", "k_resolved", "k_rules"}
)


@dataclass(frozen=True)
class Locked:
    """What :func:`lock_keys` read."""

    active: dict[AlertKey, dict[str, Any]]  # the alerts not resolved, as ``SELECT *`` gives them
    resolved: dict[AlertKey, datetime]  # the latest resolutions read (keys that have one)
    rules: dict[str, list[Rule]]  # the routing rules of the tenants asked for


async def lock_keys(
    conn: Conn,
    keys: Sequence[AlertKey],
    *,
    raised: Set[AlertKey],
    cleared: Set[AlertKey],
    rules_for: Set[str],
) -> Locked:
    """In one statement: the alerts that are not resolved for ``keys`` (sorted, distinct),
    locked for update in id order; the latest resolution of each key of ``raised`` that has
    no such alert or is also in ``cleared``; and the routing rules of the tenants of
    ``rules_for``."""
    if not keys:
        return Locked({}, {}, {})
    wanted = set(rules_for)
    ask: list[bool] = []
    for key in keys:  # the rules once per tenant
        ask.append(key[0] in wanted)
        wanted.discard(key[0])
    rows = await conn.fetch(
        _LOCK_KEYS,
        *_columns(keys),
        [k in raised for k in keys],
        [k in cleared for k in keys],
        ask,
    )
    found = Locked({}, {}, {})
    for r in rows:
        key = (r["k_tenant"], r["k_learner_key"], r["k_kind"], r["k_competency"])
        if r["id"] is not None:
            found.active[key] = {c: v for c, v in r.items() if c not in _KEY_COLUMNS}
        if r["k_resolved"] is not None:
            found.resolved[key] = r["k_resolved"]
        if r["k_rules"] is not None:
            found.rules[key[0]] = [Rule(**rule) for rule in r["k_rules"]]
    return found


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
# events, one delivery per active webhook of each alert's team subscribed to the change's action
# (all of them unless the webhook names some), and the NOTIFYs that wake the
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
        AND (w.actions IS NULL OR c.action = ANY (w.actions))
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
