"""The consumer's delivery loop (``shared.faust_consumer._drain_messages``): records handed to the
streams in order, a delivery that completes at once without tasks, one that waits finished in a
task, one the flow suspends abandoned as Faust's ``wait_first`` does. No broker: a fake
consumer with the attributes the loop reads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import mode
import pytest

from shared.faust_consumer import _drain_messages, _resumed, copies_fausts_drain, quick_delivery
from shared.streaming import close_unused_loops, make_faust_app


class _Flags:
    def set_flag(self, _flag: str) -> None: ...

    def unset_flag(self, _flag: str) -> None: ...


class _Msg:
    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.topic = "t"


class _FakeConsumer:
    """What ``_drain_messages`` reads of a Faust consumer; one fetch of ``offsets`` then stop."""

    consumer_stopped_errors = (ConnectionError,)

    def __init__(self, offsets: list[int], callback: Any) -> None:
        self._offsets = offsets
        self.callback = callback
        self._stopped = asyncio.Event()
        self._read_offset: dict[str, int | None] = {"tp": None}
        self.diag = _Flags()
        self._commit_every = None
        self._n_acked = 0
        self.app = type("A", (), {"topics": type("T", (), {"acks_enabled_for": None})()})()
        self.suspend_flow = mode.utils.locks.Event()
        self.should_stop = False
        self.log = logging.getLogger("fake")
        self.waited = 0

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[str, _Msg]]:  # noqa: ASYNC109
        for offset in self._offsets:
            yield "tp", _Msg(offset)
        self._stopped.set()

    async def sleep(self, n: float) -> None:
        await asyncio.sleep(n)

    async def wait_first(self, *aws: Any) -> None:
        """mode's ``Service.wait_first`` in short: the first to finish wins, the rest cancelled."""
        self.waited += 1
        futures = [asyncio.ensure_future(a) for a in aws]
        try:
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                f.result()
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()


async def _drain(consumer: _FakeConsumer) -> None:
    fetcher = type("F", (), {"_stopped": asyncio.Event()})()
    await _drain_messages(consumer, fetcher)


def test_the_copied_loop_is_the_installed_fausts() -> None:
    # if this fails, Faust's loop changed: copy it again (shared.faust_consumer._drain_messages)
    assert copies_fausts_drain()


async def test_immediate_deliveries_in_order_without_wait_first() -> None:
    seen: list[int] = []

    async def callback(message: _Msg) -> None:
        seen.append(message.offset)

    consumer = _FakeConsumer([3, 4, 5], callback)
    await _drain(consumer)
    assert seen == [3, 4, 5]
    assert consumer._read_offset["tp"] == 5
    assert consumer.waited == 0


async def test_a_waiting_delivery_finishes_in_a_task_before_the_next() -> None:
    seen: list[tuple[str, int]] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(message: _Msg) -> None:
        if message.offset == 1:
            seen.append((await gate, 1))
        else:
            seen.append(("now", message.offset))

    consumer = _FakeConsumer([0, 1, 2], callback)
    drain = asyncio.ensure_future(_drain(consumer))
    await asyncio.sleep(0.01)
    assert seen == [("now", 0)]  # offset 1 waits; offset 2 not handed over before it
    gate.set_result("later")
    await drain
    assert seen == [("now", 0), ("later", 1), ("now", 2)]
    assert consumer.waited == 1


async def test_a_delivery_held_by_suspended_flow_is_abandoned() -> None:
    seen: list[int] = []
    cancelled: list[int] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def callback(message: _Msg) -> None:
        if message.offset == 1:
            try:
                await never
            except asyncio.CancelledError:
                cancelled.append(1)
                raise
        seen.append(message.offset)

    consumer = _FakeConsumer([0, 1, 2], callback)
    drain = asyncio.ensure_future(_drain(consumer))
    await asyncio.sleep(0.01)
    consumer.suspend_flow.set()  # a rebalance: Faust drops the delivery, the loop goes on
    await drain
    assert seen == [0, 2]
    assert cancelled == [1]


async def test_resumed_passes_results_and_errors_through() -> None:
    loop = asyncio.get_running_loop()

    async def twice(a: asyncio.Future[int], b: asyncio.Future[int]) -> int:
        first = await a
        try:
            await b
        except ValueError:
            return first * 10
        return -1

    a, b = loop.create_future(), loop.create_future()
    coro = twice(a, b)
    task = asyncio.ensure_future(_resumed(coro, coro.send(None)))
    a.set_result(4)
    await asyncio.sleep(0)
    b.set_exception(ValueError("x"))
    assert await task == 40


async def test_resumed_is_cancelled_inside() -> None:
    loop = asyncio.get_running_loop()
    cleaned: list[bool] = []

    async def waits(fut: asyncio.Future[None]) -> None:
        try:
            await fut
        finally:
            cleaned.append(True)

    coro = waits(loop.create_future())
    task = asyncio.ensure_future(_resumed(coro, coro.send(None)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


def test_installed_on_the_consumer() -> None:
    app = make_faust_app("quick", bootstrap="127.0.0.1:9092", topic_prefix="tq.", partitions=1)
    try:
        assert quick_delivery(app)
        consumer: Any = app.consumer
        assert consumer._drain_messages.__func__ is _drain_messages
    finally:
        close_unused_loops(app)


def test_not_installed_when_fausts_loop_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.faust_consumer.DRAIN_SOURCE_SHA256", "0" * 64)
    app = make_faust_app("quick", bootstrap="127.0.0.1:9092", topic_prefix="tq.", partitions=1)
    try:
        assert not quick_delivery(app)
        consumer: Any = app.consumer
        assert getattr(consumer._drain_messages, "__func__", None) is not _drain_messages
    finally:
        close_unused_loops(app)
