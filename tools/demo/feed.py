"""Helpers of the pipeline benchmarks: post simulated statements as fast as ingest takes them
(recording when each was accepted), follow ``alerts.events``, wait for a metric.

The statements go in event-time order, one request in flight (like an LMS that must keep one
learner's statements in order), in batches of one tenant.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from shared.kafka import kafka_consumer
from tools.simulator.emit import XAPI_VERSION_HEADER, Pace, batches, encode_batch
from tools.simulator.simulate import Event

RETRIES = 10  # 503s in a row before a benchmark gives up


@dataclass
class Posted:
    began: float = 0.0  # monotonic, first POST sent
    ended: float = 0.0  # monotonic, last POST answered
    accepted_at: dict[str, float] = field(default_factory=dict)  # statement id -> monotonic
    requests: int = 0
    retried: int = 0  # requests answered 503 (retriable) and sent again after Retry-After


async def post_statements(
    endpoint: str,
    events: Sequence[Event],
    credentials: Mapping[str, tuple[str, str]],
    batch_size: int = 250,
    pace: Pace | None = None,
) -> Posted:
    """POST every statement; a refusal raises (a benchmark must not silently lose load). A 503
    (ingest's retriable answer: a dependency away or slow) is retried after its ``Retry-After``,
    as an LMS would, at most ``RETRIES`` times in a row, and counted in ``retried``."""
    posted = Posted()
    auth = {
        tenant: "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        for tenant, (user, secret) in credentials.items()
    }
    url = endpoint.rstrip("/") + "/xapi/statements"
    posted.began = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        async for batch in batches(events, pace or Pace(), batch_size):
            headers = {
                **XAPI_VERSION_HEADER,
                "Content-Type": "application/json",
                "Authorization": auth[batch[0].tenant],
            }
            body = encode_batch(batch)
            for attempt in range(RETRIES + 1):
                async with http.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                    if resp.status == 200:
                        break
                    if resp.status != 503 or attempt == RETRIES:
                        raise RuntimeError(f"POST answered {resp.status}: {answer[:500]!r}")
                    wait = float(resp.headers.get("Retry-After", "1"))
                posted.retried += 1
                await asyncio.sleep(wait)
            now = time.monotonic()
            posted.requests += 1
            for event in batch:
                posted.accepted_at[str(event.statement["id"])] = now
    posted.ended = time.monotonic()
    return posted


@dataclass
class Received:
    at: float  # monotonic
    envelope: dict[str, Any]


@dataclass
class EventLog:
    """Every record of a topic, with the monotonic time it reached this process."""

    records: list[Received] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


async def follow(bootstrap: str, topic: str, log: EventLog, stop: asyncio.Event) -> None:
    async with kafka_consumer(bootstrap, topic, group_id=None) as consumer:
        log.ready.set()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        log.records.append(Received(now, orjson.loads(record.value)))


async def wait_for(
    probe: Callable[[], Awaitable[bool]], limit: float, every: float = 0.25
) -> float | None:
    """Poll ``probe`` until true; the monotonic time it became true, or None after ``limit``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await probe():
            return time.monotonic()
        await asyncio.sleep(every)
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
