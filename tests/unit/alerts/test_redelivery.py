"""A worker restarted after ``kill -9`` is handed again every update whose offset was not
committed (Faust commits every few seconds) while its table already holds their effects: the
source offset kept in each learner's state recognises all of them, not only the 64 the ring of
recent event ids remembers (found by tests/integration/resilience/test_worker_crash.py: older
redelivered updates advanced the detector state twice and changed a ``gaming`` alert's
evidence). And a batch's states reach the table only after its transaction commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from services.alerts.metrics import AlertsMetrics
from services.alerts.processor import Marks, Processor, _Item
from services.alerts.rules import DetectorSettings
from services.alerts.state import SEEN_EVENTS, LearnerState
from tests.unit.alerts.helpers import T0, update_env

PARTITION = 3


class Settings:
    async def get(self, _tenant: str, _programme: str | None) -> DetectorSettings:
        return DetectorSettings()


class Worker(Processor):
    """The processor with its transaction replaced by an inbox of event ids (what PostgreSQL
    keeps across the crash) and the signals of the updates it applied."""

    def __init__(self, inbox: set[uuid.UUID]) -> None:
        async def deadletter(*_: Any) -> None:
            raise AssertionError("nothing is dead-lettered here")

        self.metrics = AlertsMetrics(CollectorRegistry())
        super().__init__(None, None, Settings(), self.metrics, deadletter)  # type: ignore[arg-type]
        self.inbox = inbox
        self.signals: list[Any] = []

    async def apply_batch(
        self, items: Sequence[_Item], marks: Marks | None = None
    ) -> set[uuid.UUID]:
        new = {i.env.event_id for i in items} - self.inbox
        self.inbox |= new
        self.signals += [s for i in items if i.env.event_id in new for s in i.signals]
        return new

    def count(self, outcome: str) -> float:
        return float(self.metrics.updates.labels(outcome)._value.get())


def records(n: int) -> list[tuple[bytes, bytes]]:
    """Fast answers with hints on one competency (gaming raised and cleared as the window
    moves) and a few wrong ones, one minute apart."""
    out = []
    for i in range(n):
        env, _ = update_env(
            T0 + timedelta(minutes=i),
            correct=i % 4 != 0,
            duration_s=2.0 if i % 5 else 40.0,
            hints=i // 3,
            mastery_after=min(0.9, 0.2 + i / 400),
        )
        out.append((env.key, env.to_bytes()))
    return out


async def feed(
    worker: Worker,
    table: dict[bytes, bytes],
    batch: list[tuple[bytes, bytes]],
    first_offset: int,
) -> list[str]:
    offsets = list(range(first_offset, first_offset + len(batch)))
    return await worker.process_batch(
        batch, table, partitions=[PARTITION] * len(batch), offsets=offsets
    )


async def test_a_redelivery_beyond_the_ring_leaves_the_state_unchanged() -> None:
    stream = records(150)
    table: dict[bytes, bytes] = {}
    inbox: set[uuid.UUID] = set()
    first = Worker(inbox)
    for start in range(0, len(stream), 25):  # acknowledged batches, offsets never committed
        await feed(first, table, stream[start : start + 25], start)
    [before] = table.values()
    state = LearnerState.from_bytes(before)
    assert (state.partition, state.offset) == (PARTITION, 149)
    assert len(state.seen) == SEEN_EVENTS < 100
    assert state.competencies["py.basics"].attempts == 150
    assert "gaming" in {s.kind for s in first.signals}

    # restarted from the recovered table and the last committed offset (49): 100 come back
    again = Worker(inbox)
    outcomes = []
    for start in range(50, len(stream), 25):
        outcomes += await feed(again, table, stream[start : start + 25], start)
    assert outcomes == ["duplicate"] * 100
    assert table[stream[0][0]] == before  # nothing applied twice
    assert again.count("duplicate") == 100
    assert again.count("applied") == 0

    # and what comes next is applied once, from the right state
    [(key, raw)] = records(1)
    await feed(again, table, [(key, raw)], 150)
    after = LearnerState.from_bytes(table[key])
    assert after.competencies["py.basics"].attempts == 151
    assert after.offset == 150


async def test_a_redelivery_gives_the_same_state_as_an_undisturbed_run() -> None:
    stream = records(120)
    reference: dict[bytes, bytes] = {}
    await feed(Worker(set()), reference, stream, 0)

    table: dict[bytes, bytes] = {}
    inbox: set[uuid.UUID] = set()
    await feed(Worker(inbox), table, stream[:100], 0)
    restarted = Worker(inbox)
    await feed(restarted, table, stream[10:], 10)  # 90 redelivered, 20 new
    assert table == reference
    assert restarted.count("duplicate") == 90
    assert restarted.count("applied") == 20


async def test_an_entry_without_an_offset_still_loads_and_is_applied_once() -> None:
    stream = records(3)
    table: dict[bytes, bytes] = {}
    await feed(Worker(set()), table, stream[:2], 0)
    [(key, value)] = table.items()
    old = orjson.loads(value)
    del old["partition"], old["offset"]  # as written before the offset was kept
    table[key] = orjson.dumps(old)
    state = LearnerState.from_bytes(table[key])
    assert (state.partition, state.offset) == (None, None)
    assert not state.applied(PARTITION, 0)

    worker = Worker(set())
    outcomes = await feed(worker, table, stream, 0)  # the ring of recent ids still tells
    assert outcomes == ["duplicate", "duplicate", "applied"]
    state = LearnerState.from_bytes(table[key])
    assert (state.partition, state.offset) == (PARTITION, 2)
    assert state.competencies["py.basics"].attempts == 3


def test_an_offset_on_another_partition_is_not_taken_for_a_redelivery() -> None:
    state = LearnerState(partition=PARTITION, offset=10)
    assert state.applied(PARTITION, 10)
    assert state.applied(PARTITION, 3)
    assert not state.applied(PARTITION, 11)
    assert not state.applied(PARTITION + 1, 3)
    assert not state.applied(None, 3)
    assert not LearnerState().applied(PARTITION, 0)


async def test_states_reach_the_table_only_after_the_transaction_commits() -> None:
    class Stalled(Worker):
        async def apply_batch(
            self, items: Sequence[_Item], marks: Marks | None = None
        ) -> set[uuid.UUID]:
            await asyncio.Event().wait()  # killed before the commit
            raise AssertionError("unreachable")

    table: dict[bytes, bytes] = {}
    await feed(Worker(set()), table, records(1), 0)
    before = dict(table)
    task = asyncio.ensure_future(feed(Stalled(set()), table, records(5), 1))
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    assert table == before
