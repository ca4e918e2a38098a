"""A worker restarted after a crash is handed again every statement whose offset was not
committed (Faust commits every few seconds), while its table already holds their effects: the
source offset kept in each learner's entry recognises all of them, not only the few the ring of
recent ids remembers (found by tests/integration/resilience/test_worker_crash.py). And the table
never gets ahead of the projection: a batch killed before its projection committed is computed
again to the same rows and updates, not rebuilt from a later state."""

from __future__ import annotations

import asyncio
import struct
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.pipeline import Pipeline
from services.progress.state import LearnerRecord, decode, encode
from tests.unit.progress.samples import SALT, T0, framework, prepared


class Projection:
    """Stands in for the projector: keeps what each flush was given."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, Any]] = []
        self.flushed: list[tuple[int, int, Any]] = []

    def add(self, partition: int, offset: int, outcome: Any) -> None:
        self.items.append((partition, offset, outcome))

    def take(self) -> list[tuple[int, int, Any]]:
        items, self.items = self.items, []
        return items

    async def flush(self, items: list[tuple[int, int, Any]]) -> int:
        self.flushed.extend(items)
        return len(items)


class Stalled(Projection):
    """A projection transaction that never commits (the process is killed meanwhile)."""

    async def flush(self, items: list[tuple[int, int, Any]]) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def worker(
    table: dict[bytes, bytes],
    recent_ids: int = 64,
    projection: Projection | None = None,
    batch_max: int = 1000,
) -> tuple[Pipeline, Projection, list[tuple[bytes, bytes]]]:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework()])
    projection = projection or Projection()
    updates: list[tuple[bytes, bytes]] = []

    async def write(entries: list[tuple[bytes, bytes]]) -> None:
        table.update(entries)

    async def send_many(_topic: str, records: list[tuple[bytes, bytes]]) -> None:
        updates.extend(records)

    async def nothing(*_: Any) -> None:
        return None

    pipeline = Pipeline(
        table=table,
        processor=Processor(registry, recent_ids),
        projector=projection,  # type: ignore[arg-type]
        metrics=ProgressMetrics(CollectorRegistry()),
        send=nothing,
        send_many=send_many,
        write_entries=write,
        flush_producer=nothing,
        updates_topic="u",
        deadletter_topic="d",
        batch_max=batch_max,
        within=60.0,
    )
    pipeline.ack = nothing
    return pipeline, projection, updates


def events(n: int, step: timedelta = timedelta(minutes=1)) -> list[SimpleNamespace]:
    out = []
    for offset in range(n):
        p = prepared(user="u-1", success=offset % 3 != 0, at=T0 + offset * step)
        message = SimpleNamespace(topic="s", partition=0, offset=offset)
        out.append(SimpleNamespace(key=p.key, value=p.envelope, message=message))
    return out


async def test_every_redelivered_statement_is_recognised_beyond_the_ring() -> None:
    table: dict[bytes, bytes] = {}
    stream = events(10)
    first, _, _ = worker(table, recent_ids=3)
    for event in stream:
        await first.on_event(event)
    await first.drain()
    [value] = table.values()
    before = decode(value)
    assert before.offset == 9
    assert len(before.recent) == 3
    assert before.competencies["py.basics"].model.attempts == 10

    # the restarted worker recovered the table, but the offsets were never committed
    again, projection, resent = worker(table, recent_ids=3)
    for event in stream:
        await again.on_event(event)
    await again.drain()
    assert decode(table[stream[0].key]) == before  # nothing applied twice
    assert again._metrics.redelivered.labels("acme")._value.get() == 10
    assert resent == []  # their updates were acknowledged before the table took them
    outcomes = [out for _, _, out in projection.flushed]
    assert len(outcomes) == 10
    assert all(out.duplicate for out in outcomes)
    assert {row.attempts for out in outcomes for row in out.competencies} == {10}

    # and what follows is applied once
    later = events(12)[10:]
    for event in later:
        await again.on_event(event)
    await again.drain()
    after = decode(table[stream[0].key])
    assert after.offset == 11
    assert after.events == 12
    assert after.competencies["py.basics"].model.attempts == 12


def projected(projection: Projection) -> dict[str, dict[Any, Any]]:
    """What the projection's upserts leave (the last row of each key wins)."""
    out: dict[str, dict[Any, Any]] = {"competency": {}, "daily": {}, "activity": {}}
    for _, _, outcome in projection.flushed:
        for row in outcome.competencies:
            out["competency"][row.key] = row.values()
        for d in outcome.daily:
            out["daily"][(d.learner_key, d.competency, d.day)] = d.mastery
        out["activity"][outcome.activity.learner_key] = outcome.activity.events
    return out


async def test_a_batch_killed_before_its_projection_committed_is_computed_again() -> None:
    stream = events(8, step=timedelta(hours=7))  # over three days
    calm, reference, sent = worker({})
    for event in stream:
        await calm.on_event(event)
    await calm.drain()
    want = projected(reference)
    assert len(want["daily"]) == 3

    # the batch is sealed (full) and its flush hangs in the projection; then kill -9
    table: dict[bytes, bytes] = {}
    killed, _, _ = worker(table, projection=Stalled(), batch_max=len(stream))
    for event in stream:
        await killed.on_event(event)
    await asyncio.sleep(0)
    assert killed._inflight is not None
    assert not killed._inflight.done()
    killed._inflight.cancel()
    assert table == {}, "the table holds statements whose projection never committed"

    again, projection, resent = worker(table)
    for event in stream:
        await again.on_event(event)
    await again.drain()
    assert projected(projection) == want
    assert resent == sent  # the same updates, byte for byte
    assert again._metrics.redelivered.labels("acme")._value.get() == 0


def test_offset_round_trips_and_format_1_reads_as_none() -> None:
    record = LearnerRecord(events=2, offset=41)
    assert decode(encode(record)) == record
    assert decode(encode(LearnerRecord())).offset == -1
    # a value written before the offset was kept: version 1, no offset field
    old = struct.pack("<BIqqHH", 1, 2, -(2**63), -(2**63), 0, 0)
    assert decode(old) == LearnerRecord(events=2)


class Gated(Projection):
    """A projection transaction that commits when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def flush(self, items: list[tuple[int, int, Any]]) -> int:
        await self.gate.wait()
        return await super().flush(items)


async def test_held_for_a_rebalance_no_table_entry_is_written_until_released() -> None:
    """Between a revocation and the end of Faust's table recovery (which replays the
    changelog into the table) the pipeline writes no table entry: ``hold`` returns once the
    flush in flight has written its entries, and nothing is sealed until ``release``."""
    table: dict[bytes, bytes] = {}
    projection = Gated()
    pipeline, _, _ = worker(table, projection=projection, batch_max=2)
    stream = events(5)
    for event in stream[:2]:
        await pipeline.on_event(event)  # full: sealed, its projection waits for the gate
    holding = asyncio.ensure_future(pipeline.hold())
    await asyncio.sleep(0.01)
    assert not holding.done()
    assert table == {}
    projection.gate.set()
    await holding
    assert decode(table[stream[0].key]).offset == 1  # the flush in flight wrote its entries
    for event in stream[2:]:
        await pipeline.on_event(event)  # over batch_max: not sealed while held
    pipeline.within = 0.0
    await pipeline.tick()
    await asyncio.sleep(0.01)
    assert decode(table[stream[0].key]).offset == 1
    pipeline.release()
    await pipeline.tick()
    await pipeline.drain()
    assert decode(table[stream[0].key]).offset == 4
    assert decode(table[stream[0].key]).competencies["py.basics"].model.attempts == 5
