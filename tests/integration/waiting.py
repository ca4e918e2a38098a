"""Waiting on the real servers without sleeping blindly: read records until enough arrived,
poll a condition until it holds; each bounded by a deadline that fails the test with a message."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from aiokafka import ConsumerRecord

from shared.kafka import kafka_consumer


async def consume(
    bootstrap: str, topic: str, count: int, *, within: float = 30.0, settle: float = 0.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records of ``topic`` from the start (then ``settle`` seconds more, to
    catch unexpected extras), failing after ``within`` seconds."""
    found: list[ConsumerRecord[bytes, bytes]] = []
    async with kafka_consumer(bootstrap, topic, group_id=None) as consumer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(found) < count and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                found.extend(records)
        end = loop.time() + settle
        while loop.time() < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(records)
    assert len(found) >= count, f"{len(found)} of {count} records on {topic} in {within}s"
    return found


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not met within {within}s")


async def close_within(stack: AsyncExitStack, seconds: float, what: str) -> None:
    """Close ``stack``; if that takes longer than ``seconds``, fail with the stack of every
    task still pending (a hung teardown then says what it waits for instead of timing out
    silently in pytest-timeout)."""
    try:
        async with asyncio.timeout(seconds):
            await stack.aclose()
    except TimeoutError:
        dump = io.StringIO()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.print_stack(file=dump)
        raise AssertionError(
            f"{what} did not finish within {seconds}s:\n{dump.getvalue()}"
        ) from None
