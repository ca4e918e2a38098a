"""Applies progress updates in batches: detectors on each learner's state, then ONE PostgreSQL
transaction for the whole batch. Called by the Faust agent (:mod:`services.alerts.agents`) with
the records of one sealed batch (:meth:`Processor.process` is a batch of one).

Per batch: each learner's state is read from the table and decoded once, every update of the
batch is run through the detectors in order (in memory), then one transaction moves the
partitions' watermarks, then ONE statement (:func:`repository.record_evidence
<services.alerts.repository.record_evidence>`) inserts all the event ids into ``inbox`` (``ON
CONFLICT DO NOTHING RETURNING`` tells which are new) and, when all of them are (a redelivery
makes a second statement with the new ones only), upserts the learners' activity, the
attendance at live sessions and the event clocks; then the signals of the new updates are
applied, in order, in a few statements whatever their number
(:meth:`Changes.apply_signals <services.alerts.changes.Changes.apply_signals>`: their alerts
locked and read at once, decided in memory, written back at once). After the commit each
learner's state is encoded and written to the table once (all of them in one ``write`` call: the
agent sends their changelog records batched, to each learner's partition).

Exactly-once effect under at-least-once delivery (unchanged by batching):

* the inbox insert is in the same transaction as the effects: an update whose ``event_id`` was
  there was applied before (a redelivery) and its signals are dropped;
* the learners' detector states are written to the Faust table only *after* that transaction
  commits, and the batch's offsets are acknowledged only after the changelog records are. A
  crash in between redelivers the batch against the old states, which compute the same
  signals, and the inbox drops them; updates the table already holds (a crash after the table
  write but before the offset commit, which Faust only makes every few seconds: many batches
  come back after ``kill -9``) are at or below the source offset kept in their learner's state
  and are skipped as duplicates, however many there are (the ``seen`` ring of recent event ids
  only covers updates whose offset is unknown);
* a batch whose transaction fails for a non-retriable reason is applied again one update per
  transaction, so only the update that breaks is dead-lettered;
* PostgreSQL away: the transaction is retried with back-off (the partition waits, nothing is
  lost); a message that cannot be decoded or breaks a detector goes to
  ``progress.updates.deadletter`` with its reason and never blocks the partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import asyncpg
from pydantic import ValidationError

from services.alerts import repository as repo
from services.alerts.changes import Changes, Outcome
from services.alerts.detectors import evaluate
from services.alerts.metrics import AlertsMetrics
from services.alerts.sessions import attendance_rows
from services.alerts.settings_store import SettingsStore
from services.alerts.state import LearnerState, Signal, StateEncoder
from shared import watermarks
from shared.batching import DecodedValues
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.errors import PermanentError, is_retriable
from shared.events import ProgressUpdate

log = logging.getLogger(__name__)

_T = TypeVar("_T")
ACCEPTED = frozenset({PROGRESS_UPDATE_V1})

#: ``(key, original value, reason, message)`` -> sent to the dead-letter topic
DeadLetter = Callable[[bytes | None, bytes, str, str], Awaitable[None]]
#: (topic, ``{partition: last offset}``): the watermarks a batch moves
Marks = tuple[str, dict[int, int]]
#: writes ``[(table key, value), ...]`` to the learners table
WriteEntries = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]


@dataclass
class _Item:
    """One decoded record of a batch and what the detectors made of it."""

    index: int
    key: bytes | None
    raw: bytes
    env: Envelope
    update: ProgressUpdate
    signals: list[Signal] = field(default_factory=list)
    partition: int | None = None


def _activity(
    items: Sequence[_Item],
) -> list[tuple[str, str, datetime, str | None, str | None, datetime | None]]:
    """One ``learner_activity`` row per learner: the latest event time, the last programme and
    business unit given (what applying the updates one by one leaves) and the earliest event
    time naming that programme since it was given, sorted by key."""
    rows: dict[tuple[str, str], list[Any]] = {}
    for item in items:
        env, update = item.env, item.update
        row = rows.setdefault((env.tenant, env.learner_key), [env.occurred_at, None, None, None])
        row[0] = max(row[0], env.occurred_at)
        if update.programme is not None:
            if update.programme != row[1]:
                row[1], row[3] = update.programme, env.occurred_at
            else:
                row[3] = min(row[3], env.occurred_at)
        if update.business_unit is not None:
            row[2] = update.business_unit
    return [(t, lk, *row) for (t, lk), row in sorted(rows.items())]


def _evidence(
    items: Sequence[_Item],
) -> list[tuple[str, str, datetime, str, str | None, str | None]]:
    """What live-session attendance needs of each update (``sessions.attendance_rows``)."""
    return [
        (i.env.tenant, i.env.learner_key, i.env.occurred_at, i.update.evidence,
         i.update.programme, i.update.session_id)
        for i in items
    ]  # fmt: skip


def _clocks(items: Sequence[_Item]) -> dict[int, datetime]:
    """The largest event time per partition (of the items whose partition is known)."""
    clocks: dict[int, datetime] = {}
    for item in items:
        if item.partition is not None:
            at = clocks.get(item.partition)
            clocks[item.partition] = (
                item.env.occurred_at if at is None else max(at, item.env.occurred_at)
            )
    return clocks


async def _record_evidence(
    conn: repo.Conn, event_ids: list[uuid.UUID], items: Sequence[_Item]
) -> set[uuid.UUID]:
    """:func:`repo.record_evidence` of ``items`` (their activity, attendance and clocks, written
    only if every one of ``event_ids`` is new)."""
    return await repo.record_evidence(
        conn,
        event_ids,
        activity=_activity(items),
        attendance=attendance_rows(_evidence(items)),
        at=max(i.env.occurred_at for i in items) if items else None,
        clocks=_clocks(items),
    )


class Processor:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        changes: Changes,
        settings: SettingsStore,
        metrics: AlertsMetrics,
        deadletter: DeadLetter,
        *,
        retry_max: float = 10.0,
        decoded_max: int = 1024,  # ~30 KB of JSON each with 6 competencies when decoded again
    ) -> None:
        self._pool = pool
        self._changes = changes
        self._settings = settings
        self._metrics = metrics
        self._deadletter = deadletter
        self._retry_max = retry_max
        # learner states decoded from (or encoded into) the table: reused while it holds them
        self._decoded = DecodedValues(LearnerState.from_bytes, decoded_max)
        self._encoder = StateEncoder(decoded_max)
        # label lookups once, not per update
        self._applied = metrics.updates.labels("applied")
        self._duplicate = metrics.updates.labels("duplicate")
        self._deadlettered = metrics.updates.labels("deadletter")

    async def _dead(self, key: bytes | None, raw: bytes, reason: str, message: str) -> None:
        log.warning(
            "progress update dead-lettered: %s %s",
            reason,
            message,
            extra={"reason": reason, "error": message},
        )
        self._metrics.deadletters.labels("stream", reason).inc()
        self._deadlettered.inc()
        await self._deadletter(key, raw, reason, message)

    async def process(
        self, key: bytes | None, raw: bytes, table: MutableMapping[bytes, bytes]
    ) -> str:
        """Handle one record; returns ``applied``, ``duplicate`` or ``deadletter``."""
        [outcome] = await self.process_batch([(key, raw)], table)
        return outcome

    async def process_batch(
        self,
        records: Sequence[tuple[bytes | None, bytes]],
        table: MutableMapping[bytes, bytes],
        *,
        partitions: Sequence[int] | None = None,
        offsets: Sequence[int] | None = None,
        write: WriteEntries | None = None,
        topic: str | None = None,
    ) -> list[str]:
        """Handle records in order; returns each one's ``applied``, ``duplicate`` or
        ``deadletter``. States are read from ``table``; after the transaction the changed ones
        are written with ``write([(key, state), ...])`` (one call), or into ``table`` when not
        given. ``partitions`` (of the records, when known) advance the per-partition event
        clocks the scanner's replay clock is made of; with ``offsets`` too, each state keeps
        the position of its last update, and an update at or below it is a duplicate; with
        ``topic`` too, the partitions' watermarks move to the batch's last offsets in its
        transaction (after the updates when they are applied one by one; :meth:`next_offset`)."""
        started = time.perf_counter()
        outcomes = ["deadletter"] * len(records)
        states: dict[bytes, LearnerState] = {}
        last_index: dict[bytes, int] = {}
        items: list[_Item] = []
        for index, (key, raw) in enumerate(records):
            try:
                env = Envelope.parse(raw, ACCEPTED)
                update = ProgressUpdate.model_validate(env.payload)
            except PermanentError as exc:
                await self._dead(key, raw, exc.reason, str(exc))
                continue
            except ValidationError as exc:
                await self._dead(key, raw, "invalid_payload", str(exc.errors()[0]))
                continue
            state = states.get(env.key)
            if state is None:
                state = self._decoded.get(env.key, table.get(env.key))
            partition = partitions[index] if partitions is not None else None
            offset = offsets[index] if offsets is not None else None
            if state.applied(partition, offset) or str(env.event_id) in state.seen:
                states[env.key] = state
                outcomes[index] = "duplicate"
                continue
            item = _Item(index, key, raw, env, update, partition=partition)
            try:
                programme = update.programme or state.programme
                settings = await self._retrying(partial(self._settings.get, env.tenant, programme))
                new_state, item.signals = evaluate(state, env, update, settings)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug or bad data must not stop the partition
                await self._dead(key, raw, "processing_error", f"{type(exc).__name__}: {exc}")
                continue
            if partition is not None and offset is not None:
                new_state.partition, new_state.offset = partition, offset
            states[env.key] = new_state
            last_index[env.key] = index
            items.append(item)
        marks: Marks | None = None
        if topic is not None and partitions is not None and offsets is not None:
            tops: dict[int, int] = {}
            for partition, offset in zip(partitions, offsets, strict=True):
                tops[partition] = max(offset, tops.get(partition, offset))
            marks = (topic, tops)
        applied = await self._apply_all(items, marks)
        for item in items:
            outcomes[item.index] = applied.get(item.index, "deadletter")
        await self._write_states({k: states[k] for k in last_index}, table, write)
        self._count(outcomes, time.perf_counter() - started)
        return outcomes

    async def _move_watermarks(self, topic: str, tops: dict[int, int]) -> None:
        async with self._pool.acquire() as conn:
            await watermarks.move(conn, topic, tops)

    async def next_offset(self, topic: str, partition: int) -> int | None:
        """The offset after ``partition``'s watermark: where processing must resume (None:
        nothing handled from it yet)."""
        return await watermarks.next_offset(self._pool, topic, partition)

    async def _write_states(
        self,
        states: dict[bytes, LearnerState],
        table: MutableMapping[bytes, bytes],
        write: WriteEntries | None,
    ) -> None:
        encode = self._encoder.encode
        entries = [(key, encode(key, state)) for key, state in states.items()]
        for key, value in entries:
            self._decoded.remember(key, value, states[key])
        if write is not None:
            await write(entries)
        else:
            for key, value in entries:
                table[key] = value

    def _count(self, outcomes: list[str], elapsed: float) -> None:
        # dead letters were counted when sent
        if applied := outcomes.count("applied"):
            self._applied.inc(applied)
            for _ in range(applied):
                self._metrics.process_latency.observe(elapsed)
        if duplicate := outcomes.count("duplicate"):
            self._duplicate.inc(duplicate)

    async def _apply_all(self, items: list[_Item], marks: Marks | None = None) -> dict[int, str]:
        """Apply ``items`` in one transaction (one per item if that fails for good);
        returns ``applied``/``duplicate``/``deadletter`` by record index. ``marks`` (topic,
        ``{partition: offset}``): the watermarks to move, in that transaction, else after the
        items were applied one by one (or when there is none)."""
        out: dict[int, str] = {}
        try:
            if items:
                new = await self._retrying(partial(self.apply_batch, items, marks))
                return {i.index: "applied" if i.env.event_id in new else "duplicate" for i in items}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - find the update that breaks, one by one
            if len(items) == 1:
                item = items[0]
                await self._dead(
                    item.key, item.raw, "processing_error", f"{type(exc).__name__}: {exc}"
                )
                out[item.index] = "deadletter"
            else:
                for item in items:
                    out.update(await self._apply_all([item]))
        if marks is not None:
            await self._retrying(partial(self._move_watermarks, *marks))
        return out

    async def _retrying(self, step: Callable[[], Awaitable[_T]]) -> _T:
        failures = 0
        while True:
            try:
                return await step()
            except Exception as exc:
                # a unique violation: the inactivity scanner opened the same alert concurrently;
                # the retried transaction sees it and adds evidence instead
                if not (is_retriable(exc) or isinstance(exc, asyncpg.UniqueViolationError)):
                    raise
                failures += 1
                self._metrics.apply_retries.inc()
                pause = min(self._retry_max, 0.1 * 2**failures)
                log.warning(
                    "progress update not applied yet; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "pause_s": pause},
                )
                await asyncio.sleep(pause)

    async def apply(self, env: Envelope, update: ProgressUpdate, signals: list[Signal]) -> bool:
        """One update's transaction; False when its event id was applied before."""
        item = _Item(0, None, b"", env, update, signals)
        return env.event_id in await self.apply_batch([item])

    async def apply_batch(
        self, items: Sequence[_Item], marks: Marks | None = None
    ) -> set[uuid.UUID]:
        """The batch's one transaction; returns the event ids that were new (applied).
        ``marks``: the watermarks it moves too (the batch's last offsets)."""
        outcome = Outcome()
        async with self._pool.acquire() as conn, conn.transaction():
            if marks is not None:
                await watermarks.move(conn, *marks)
            new = await _record_evidence(conn, [i.env.event_id for i in items], items)
            fresh = [i for i in items if i.env.event_id in new]
            if fresh and len(new) < len(items):  # redeliveries: the others' effects only
                await _record_evidence(conn, [], fresh)
            signals = [
                (i.env.tenant, i.env.learner_key, signal, i.update.statement_id)
                for i in fresh
                for signal in i.signals
            ]
            await self._changes.apply_signals(conn, signals, outcome)
        for kind, decision in outcome.decisions:
            self._metrics.signals.labels(kind, decision).inc()
        for kind, severity in outcome.opened:
            self._metrics.raised.labels(kind, severity).inc()
        return new
