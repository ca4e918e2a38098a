"""The projection to PostgreSQL with an exactly-once effect.

The worker adds each processed statement's rows with its source partition and offset, and
flushes once per batch, *before* the batch's offsets are acknowledged to Kafka. One transaction
per flush: lock the watermarks of the partitions in the batch, drop every statement at or below
its partition's watermark (already projected before a crash or a rebalance), upsert the rows
(absolute values, each key once: the last statement wins), and move the watermarks with
``GREATEST``. A redelivered batch therefore changes nothing, and a partial crash leaves either
all or none of a batch applied.

The watermark is per partition of ``xapi.statements`` (bounded: no inbox table that grows with
every event). Because all rows are absolute values derived from the worker's state, a row
projected twice would also be harmless; the watermark guarantees that an *older* state never
overwrites a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Any

import asyncpg

from services.progress import repository as repo
from services.progress.metrics import ProgressMetrics
from services.progress.outcome import ActivityRow, CompetencyRow, DailyRow, Outcome
from shared import watermarks
from shared.errors import is_retriable

log = logging.getLogger(__name__)


class Projector:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        topic: str,
        metrics: ProgressMetrics,
        *,
        retry_max: float = 10.0,
    ) -> None:
        self._pool = pool
        self._topic = topic
        self._metrics = metrics
        self._retry_max = retry_max
        self._items: list[tuple[int, int, Outcome | None]] = []

    def add(self, partition: int, offset: int, outcome: Outcome | None) -> None:
        """``outcome`` None: a dead-lettered message, which only moves the watermark."""
        self._items.append((partition, offset, outcome))

    def __len__(self) -> int:
        return len(self._items)

    async def next_offset(self, partition: int) -> int | None:
        """The offset after ``partition``'s watermark: where processing must resume (None:
        nothing projected from it yet)."""
        return await watermarks.next_offset(self._pool, self._topic, partition)

    def take(self) -> list[tuple[int, int, Outcome | None]]:
        """What was added since the last call (a sealed batch, flushed later)."""
        items, self._items = self._items, []
        return items

    async def flush(self, items: list[tuple[int, int, Outcome | None]] | None = None) -> int:
        """Project ``items`` (default: what was added); retries retriable failures until it
        succeeds (work is delayed, never lost: the batch is not acknowledged before this
        returns). Returns the number of statements applied (not skipped)."""
        batch = self.take() if items is None else items
        if not batch:
            return 0
        delay = 0.1
        while True:
            try:
                return await self._flush_once(batch)
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                self._metrics.projection_errors.inc()
                log.warning("projection failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def _flush_once(self, items: list[tuple[int, int, Outcome | None]]) -> int:
        started = time.perf_counter()
        partitions = sorted({p for p, _, _ in items})
        comps: dict[tuple[str, str, str], CompetencyRow] = {}
        daily: dict[tuple[str, str, str, date], DailyRow] = {}
        activity: dict[tuple[str, str], ActivityRow] = {}  # the last one of each learner
        weeks: dict[tuple[str, str, date], dict[str, Any]] = {}
        top: dict[int, int] = {}
        skipped = 0
        async with self._pool.acquire() as conn, conn.transaction():
            marks = await watermarks.read(conn, self._topic, partitions, lock=True)
            for partition, offset, out in items:
                if offset <= marks.get(partition, -1):
                    skipped += 1
                    continue
                if offset > top.get(partition, -1):
                    top[partition] = offset
                if out is None:
                    continue
                for row in out.competencies:
                    comps[row.tenant, row.learner_key, row.competency] = row
                for d in out.daily:
                    daily[d.tenant, d.learner_key, d.competency, d.day] = d
                a = out.activity
                activity[a.tenant, a.learner_key] = a
                week = (a.tenant, a.learner_key, a.week)
                if week not in weeks:
                    weeks[week] = {"tenant": a.tenant, "learner_key": a.learner_key, "week": a.week}
            await repo.upsert_projection(
                conn,
                list(comps.values()),  # dataclasses: their fields are the table's columns
                list(daily.values()),
                [
                    {
                        "tenant": a.tenant,
                        "learner_key": a.learner_key,
                        "events": a.events,
                        "first_event_at": a.first_event_at,
                        "last_event_at": a.last_event_at,
                    }
                    for a in activity.values()
                ],
                [weeks[k] for k in sorted(weeks)],
            )
            if top:
                await watermarks.move(conn, self._topic, top)
        self._metrics.batch_size.observe(len(items))
        self._metrics.batch_latency.observe(time.perf_counter() - started)
        if skipped:
            self._metrics.projection_skipped.inc(skipped)
        return len(items) - skipped
