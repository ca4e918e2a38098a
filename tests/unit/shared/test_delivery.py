""":class:`shared.delivery.OffsetGuard`: what reaches the pipeline per partition is every offset,
in order, whatever the stream skipped; a position comes from the database when the partition
is new to the worker."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from faust.types import ConsumerMessage

from shared.delivery import OffsetGuard, Refetched

TOPIC = "t.progress.updates"


def message(partition: int, offset: int) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, partition, offset, 0.0, 0, [], b"k", b"v%d" % offset, None)


@dataclass
class Event:
    message: ConsumerMessage


def ev(partition: int, offset: int) -> Event:
    return Event(message(partition, offset))


@dataclass
class Log:
    """The partitions' records in Kafka (from ``first``), read again on demand."""

    first: int = 0
    calls: list[tuple[int, int, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    positions: dict[int, int | None] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)
    asked_group: list[int] = field(default_factory=list)

    async def refetch(
        self, partition: int, start: int, end: int
    ) -> AsyncGenerator[Refetched, None]:
        self.calls.append((partition, start, end))
        for o in range(max(start, self.first), end):
            yield Refetched(b"k", b"v%d" % o, message(partition, o))

    async def position(self, partition: int) -> int | None:
        self.asked.append(partition)
        return self.positions.get(partition)

    def on_gap(self, partition: int, records: int) -> None:
        self.gaps.append((partition, records))

    def guard(
        self,
        *,
        with_positions: bool = True,
        group: dict[int, int] | None = None,
        committed: dict[int, int | None] | None = None,
    ) -> OffsetGuard:
        async def fallback(partition: int) -> int:
            assert group is not None
            self.asked_group.append(partition)
            return group[partition]

        async def commit_of(partition: int) -> int | None:
            assert committed is not None
            return committed[partition]

        return OffsetGuard(
            TOPIC,
            self.refetch,
            position=self.position if with_positions else None,
            on_gap=self.on_gap,
            fallback=fallback if group is not None else None,
            committed=commit_of if committed is not None else None,
        )


def offsets(events: list[Any]) -> list[tuple[int, int]]:
    return [(e.message.partition, e.message.offset) for e in events]


async def admit_all(guard: OffsetGuard, items: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """What :func:`~shared.batching.consume_in_batches` hands to the pipeline."""
    out: list[Any] = []
    for partition, offset in items:
        event = ev(partition, offset)
        if guard.in_order(event):
            out.append(event)
        else:
            out.extend([e async for e in guard.admit(event)])
    return offsets(out)


async def test_in_order_records_pass_untouched() -> None:
    log = Log()
    guard = log.guard()
    assert not guard.in_order(ev(0, 0))  # a partition not seen yet: its position is asked
    assert await admit_all(guard, [(0, 0), (1, 0), (0, 1), (1, 1)]) == [
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
    ]
    assert log.calls == []
    assert log.gaps == []
    assert guard.expected(0) == 2
    assert guard.expected(1) == 2


async def test_a_skipped_record_is_read_again_and_given_first() -> None:
    log = Log()
    guard = log.guard()
    got = await admit_all(guard, [(0, 0), (0, 1), (0, 4), (0, 5)])
    assert got == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    assert log.calls == [(0, 2, 4)]
    assert log.gaps == [(0, 2)]


async def test_redelivered_records_pass_and_do_not_move_the_position_back() -> None:
    log = Log()
    guard = log.guard()
    got = await admit_all(guard, [(0, 0), (0, 1), (0, 2), (0, 1), (0, 2), (0, 3)])
    assert got == [(0, 0), (0, 1), (0, 2), (0, 1), (0, 2), (0, 3)]
    assert log.calls == []
    assert guard.expected(0) == 4


async def test_a_new_partition_resumes_from_the_database_position() -> None:
    log = Log(positions={0: 10, 1: None})
    guard = log.guard()
    # partition 0: the group committed past 10..11 (skipped, then committed by Faust)
    got = await admit_all(guard, [(0, 12), (1, 7)])
    assert got == [(0, 10), (0, 11), (0, 12), (1, 7)]
    assert log.calls == [(0, 10, 12)]
    assert log.asked == [0, 1]  # asked once per partition, then remembered
    await admit_all(guard, [(0, 13), (1, 8)])
    assert log.asked == [0, 1]


async def test_a_revoked_partition_is_asked_again_when_it_comes_back() -> None:
    log = Log(positions={0: 3})
    guard = log.guard()
    await admit_all(guard, [(0, 3), (0, 4)])
    guard.forget([0])
    log.positions[0] = 40  # another worker processed it meanwhile
    got = await admit_all(guard, [(0, 40)])
    assert got == [(0, 40)]  # no gap: nothing is read again
    assert log.asked == [0, 0]
    assert log.calls == []


async def test_a_partition_the_database_never_saw_resumes_from_the_group_position() -> None:
    # partition 0: a watermark; partition 1: none (a first start: the group's committed offset,
    # or the log's start, is where the first record must be)
    log = Log(positions={0: 5, 1: None})
    guard = log.guard(group={0: 99, 1: 0})
    got = await admit_all(guard, [(0, 5), (1, 3), (1, 4)])
    assert got == [(0, 5), (1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]
    assert log.asked_group == [1]  # only where the database knows nothing
    assert log.gaps == [(1, 3)]


async def test_a_group_commit_before_the_database_position_is_where_the_partition_resumes() -> None:
    # partition 0: killed after its watermark's transaction (10) and before its table entries:
    # the group committed only 6 (acknowledged after the table), and Faust's stream skips
    # 6..11 on the restart; partition 1: the commit is past the watermark (Faust's fault) and
    # the watermark holds; partition 2: the group never committed
    log = Log(positions={0: 10, 1: 4, 2: 3})
    guard = log.guard(committed={0: 6, 1: 9, 2: None})
    got = await admit_all(guard, [(0, 12), (1, 5), (2, 3)])
    assert got == [
        (0, 6),
        (0, 7),
        (0, 8),
        (0, 9),
        (0, 10),
        (0, 11),
        (0, 12),
        (1, 4),
        (1, 5),
        (2, 3),
    ]
    assert log.calls == [(0, 6, 12), (1, 4, 5)]


async def test_without_positions_the_first_record_of_a_partition_sets_it() -> None:
    log = Log()
    guard = log.guard(with_positions=False)
    assert await admit_all(guard, [(0, 5), (0, 6)]) == [(0, 5), (0, 6)]
    assert log.calls == []


async def test_records_deleted_by_retention_are_not_waited_for() -> None:
    log = Log(first=8, positions={0: 2})
    guard = log.guard()
    got = await admit_all(guard, [(0, 10), (0, 11)])
    assert got == [(0, 8), (0, 9), (0, 10), (0, 11)]
    assert log.gaps == [(0, 2)]


async def test_refetched_records_outside_the_gap_are_dropped() -> None:
    class Sloppy(Log):
        async def refetch(
            self, partition: int, start: int, end: int
        ) -> AsyncGenerator[Refetched, None]:
            async for record in super().refetch(partition, start - 1, end + 2):
                yield record

    log = Sloppy()
    guard = log.guard()
    got = await admit_all(guard, [(0, 0), (0, 3)])
    assert got == [(0, 0), (0, 1), (0, 2), (0, 3)]


class Consumer:
    """What a refetched record's ack reaches: Faust's consumer ``ack(message)`` (which marks
    the message acked and records its offset as safe to commit)."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, msg: ConsumerMessage) -> bool:
        if msg.acked:
            return False
        msg.acked = True
        self.acked.append(msg.offset)
        return True


def test_a_refetched_record_is_acknowledged_to_the_consumer_once() -> None:
    consumer = Consumer()
    record = Refetched(b"k", b"v", message(0, 7))
    assert record.ack(consumer) is True
    assert record.ack(consumer) is False  # already acked: Faust's message does the bookkeeping
    assert consumer.acked == [7]
