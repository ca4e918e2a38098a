"""The batch life cycle of :class:`shared.batching.Batcher` (sealed by size or age, one flush in
flight, in order, acknowledged only after a successful flush) and the agent body feeding it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.batching import Batcher, CachingPartitioner, DecodedValues, consume_in_batches


class Recorder:
    """A flush that records its batches (optionally held until released, or failing)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.acked: list[Any] = []
        self.observed: list[tuple[int, float]] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None
        self.running = 0
        self.most_running = 0

    async def flush(self, events: list[Any]) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            self.batches.append(list(events))
        finally:
            self.running -= 1

    async def ack(self, event: Any) -> None:
        self.acked.append(event)

    def observe(self, size: int, seconds: float) -> None:
        self.observed.append((size, seconds))

    def batcher(self, batch_max: int = 3, within: float = 0.05) -> Batcher:
        batcher = Batcher(self.flush, batch_max=batch_max, within=within, observe=self.observe)
        batcher.ack = self.ack
        return batcher


async def test_sealed_by_size_then_by_age_and_acknowledged_after_the_flush() -> None:
    rec = Recorder()
    batcher = rec.batcher(batch_max=3, within=0.05)
    for n in range(7):
        await batcher.on_event(n)
    await batcher.tick()  # the open batch [6] is younger than ``within``: not sealed
    await asyncio.sleep(0.01)
    assert rec.batches == [[0, 1, 2], [3, 4, 5]]
    assert rec.acked == [0, 1, 2, 3, 4, 5]
    await asyncio.sleep(0.06)
    await batcher.tick()
    await batcher.drain()
    assert rec.batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert rec.acked == list(range(7))
    assert [size for size, _ in rec.observed] == [3, 3, 1]
    assert rec.observed[2][1] >= 0.05  # waited ``within`` for more events


async def _flush_in_flight() -> tuple[Recorder, asyncio.Event, Batcher]:
    """A batcher of pairs whose first batch ("a", "b") is sealed and flushing, its flush
    waiting for the returned gate."""
    rec = Recorder()
    gate = rec.gate = asyncio.Event()
    batcher = rec.batcher(batch_max=2, within=0.01)
    await batcher.on_event("a")
    await batcher.on_event("b")  # sealed: its flush waits for the gate
    return rec, gate, batcher


async def test_one_flush_at_a_time_in_order_and_the_next_batch_keeps_filling() -> None:
    rec, gate, batcher = await _flush_in_flight()
    await batcher.on_event("c")
    await asyncio.sleep(0.03)
    await batcher.tick()  # a flush is in flight: "c" is not sealed behind it
    assert rec.acked == []
    sealing = asyncio.ensure_future(batcher.on_event("d"))  # full: waits for the flush
    await asyncio.sleep(0.02)
    assert not sealing.done()
    gate.set()
    await sealing
    await batcher.drain()
    assert rec.batches == [["a", "b"], ["c", "d"]]
    assert rec.acked == ["a", "b", "c", "d"]
    assert rec.most_running == 1


async def test_a_failed_flush_acknowledges_nothing_and_surfaces() -> None:
    rec = Recorder()
    rec.fail = RuntimeError("database away for good")
    batcher = rec.batcher(batch_max=2, within=0.01)
    await batcher.on_event(1)
    await batcher.on_event(2)
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="away for good"):
        await batcher.tick()
    assert rec.acked == []
    assert rec.observed == []
    await batcher.abandon()  # on stop: does not raise again


async def test_abandon_leaves_the_open_batch_unacknowledged() -> None:
    rec = Recorder()
    batcher = rec.batcher(batch_max=2, within=10)
    for n in range(3):
        await batcher.on_event(n)
    await batcher.abandon()
    assert rec.acked == [0, 1]  # the flush in flight finished; event 2 is delivered again


def test_limits_are_checked() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="positive"):
        Batcher(rec.flush, batch_max=0, within=0.05)
    with pytest.raises(ValueError, match="positive"):
        Batcher(rec.flush, batch_max=10, within=0)


class FakeStream:
    """What ``consume_in_batches`` uses of a Faust stream: ``noack().events()`` and ``ack``."""

    def __init__(self, events: list[Any], rec: Recorder) -> None:
        self._events = events
        self._rec = rec
        self.done = asyncio.Event()

    def noack(self) -> FakeStream:
        return self

    async def ack(self, event: Any) -> None:
        await self._rec.ack(event)

    async def events(self) -> Any:
        for event in self._events:
            yield event
        await self.done.wait()  # a stream that stays open, idle


class FakeSignal:
    """A Faust app signal: ``connect(handler, weak=False)``, ``send(*args)``."""

    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def connect(self, handler: Any, *, weak: bool = True) -> None:
        assert weak is False  # a closure: a weak reference would lose it
        self.handlers.append(handler)

    async def send(self, *args: Any) -> None:
        for handler in self.handlers:
            await handler(self, *args, signal=self)


class FakeApp:
    def __init__(self) -> None:
        self.crashed: list[BaseException] = []
        self.on_partitions_revoked = FakeSignal()
        self.on_rebalance_complete = FakeSignal()

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)


def _agent_body(
    events: list[str], *, within: float
) -> tuple[Recorder, Batcher, FakeStream, Any, asyncio.Future[None]]:
    """``consume_in_batches`` running over ``events`` (batches of up to 100)."""
    rec = Recorder()
    batcher = Batcher(rec.flush, batch_max=100, within=within)
    stream = FakeStream(events, rec)
    app: Any = FakeApp()
    body = asyncio.ensure_future(consume_in_batches(app, stream, batcher))
    return rec, batcher, stream, app, body


async def _stop_once_acked(rec: Recorder, stream: FakeStream, body: asyncio.Future[None]) -> None:
    """Wait (up to 1 s) for a first ack, then end the stream and the agent body."""
    for _ in range(100):
        if rec.acked:
            break
        await asyncio.sleep(0.01)
    stream.done.set()
    await body


async def test_the_agent_body_seals_a_partial_batch_on_the_timer() -> None:
    rec, _, stream, app, body = _agent_body(["x", "y"], within=0.04)
    await _stop_once_acked(rec, stream, body)
    assert rec.batches == [["x", "y"]]  # sealed by the timer, not by size
    assert rec.acked == ["x", "y"]
    assert app.crashed == []


async def test_held_nothing_is_sealed_and_hold_waits_for_the_flush_in_flight() -> None:
    rec, gate, batcher = await _flush_in_flight()
    holding = asyncio.ensure_future(batcher.hold())
    await asyncio.sleep(0.02)
    assert not holding.done()  # a flush is in flight
    gate.set()
    await holding
    assert rec.batches == [["a", "b"]]
    for event in ("c", "d", "e"):  # full twice over: not sealed while held
        await batcher.on_event(event)
    await asyncio.sleep(0.03)
    await batcher.tick()  # old enough: not sealed either
    await asyncio.sleep(0.01)
    assert rec.batches == [["a", "b"]]
    batcher.release()
    await batcher.tick()
    await batcher.drain()
    assert rec.batches == [["a", "b"], ["c", "d", "e"]]
    assert rec.acked == ["a", "b", "c", "d", "e"]


async def test_a_rebalance_holds_the_pipeline_until_the_recovery_is_complete() -> None:
    """``consume_in_batches`` holds the pipeline on revocation (Faust's table recovery then
    replays the changelog: no flush may write the table meanwhile) and releases it when the
    rebalance is complete."""
    rec, batcher, stream, app, body = _agent_body([], within=0.02)
    await asyncio.sleep(0)
    await app.on_partitions_revoked.send(set())
    await batcher.on_event("x")
    await asyncio.sleep(0.08)  # several timer ticks, past ``within``
    assert rec.batches == []
    await app.on_rebalance_complete.send()
    await _stop_once_acked(rec, stream, body)
    assert rec.batches == [["x"]]
    assert app.crashed == []


def test_the_caching_partitioner_is_the_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    default, cached = DefaultPartitioner(), CachingPartitioner(max_keys=3)
    partitions = list(range(6))
    for n in range(20):
        key = f"acme|{n:032x}".encode()
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)


def test_decoded_values_decode_again_unless_the_table_holds_the_same_object() -> None:
    decoded: list[bytes | None] = []

    def decode(raw: bytes | None) -> str:
        decoded.append(raw)
        return "empty" if raw is None else raw.decode()

    values = DecodedValues(decode, max_entries=2)
    assert values.get(b"k", None) == "empty"  # nothing stored: nothing remembered
    assert len(values) == 0
    first = b"one"
    assert values.get(b"k", first) == "one"
    assert values.get(b"k", first) == "one"
    assert decoded == [None, b"one"]  # the second read reused the first decoding
    equal = bytes(bytearray(b"one"))  # same bytes, another object (another writer)
    assert equal is not first
    assert values.get(b"k", equal) == "one"
    assert decoded == [None, b"one", b"one"]
    written = b"two"
    values.remember(b"k", written, "two (as written)")
    assert values.get(b"k", written) == "two (as written)"  # what this worker encoded
    assert len(decoded) == 3
    values.get(b"a", b"a")
    values.get(b"b", b"b")  # bounded: the least recently stored entry ("k") went
    assert len(values) == 2
    values.get(b"k", written)
    assert decoded[-1] == b"two"
    with pytest.raises(ValueError, match="positive"):
        DecodedValues(decode, max_entries=0)
