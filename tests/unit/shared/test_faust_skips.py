"""Why :mod:`shared.delivery` exists: the installed faust-streaming's stream never gives the
agent a record fetched in an earlier consumer generation (one that was in flight when a
rebalance began), even on a ``noack()`` stream -- the record is dropped (the pure-Python stream,
``NO_CYTHON=1``, also acknowledges it; the compiled one does not); whether its offset is then
committed is up to Faust's commit bookkeeping. If this test fails, Faust changed how it
treats such records: read ``faust/streams.py`` ("Skipping message") again before relying on
it either way."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import faust
from faust.events import Event
from faust.types import ConsumerMessage


class Consumer:
    """The part of Faust's consumer a stream touches when it takes or acknowledges a record."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self._unacked_messages: weakref.WeakSet[Any] = weakref.WeakSet()  # the compiled stream
        self.unacked = self._unacked_messages  # the pure-Python stream (NO_CYTHON=1)

    def ack(self, message: ConsumerMessage) -> bool:
        message.acked = True
        self.acked.append(message.offset)
        return True


async def test_a_record_of_an_earlier_generation_never_reaches_the_agent(
    tmp_path: Any,
) -> None:
    app = faust.App(
        "faust-skips", broker="kafka://127.0.0.1:1", datadir=str(tmp_path), web_enabled=False
    )
    app.consumer = Consumer()  # type: ignore[assignment]
    app.consumer_generation_id = 2  # a rebalance happened: generation 1 is over
    app.flow_control.resume()
    stream: Any = app.channel().stream()
    seen: list[int] = []

    async def agent() -> None:
        async for event in stream.noack().events():
            seen.append(event.message.offset)  # noqa: PERF401 - an endless stream

    task = asyncio.ensure_future(agent())
    try:
        for offset, generation in [(0, 2), (1, 1), (2, 2)]:
            message = ConsumerMessage(
                "t", 0, offset, 0.0, 0, [], b"k", b"v", None, generation_id=generation
            )
            message.refcount = 1
            channel: Any = stream.channel
            await channel.put(Event(app, b"k", b"v", [], message))
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert seen == [0, 2]  # offset 1 was dropped, and the agent was not told
    compiled = getattr(faust.streams, "_CStreamIterator", None) is not None  # which stream ran
    consumer: Any = app.consumer
    assert consumer.acked == ([] if compiled else [1])
