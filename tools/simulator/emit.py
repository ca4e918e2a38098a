"""Sinks for the simulated statements, with rate control in event-time order.

* :func:`send_jsonl` — append to a JSONL file (flushed per batch, so ``tail -f`` follows it);
* :func:`send_http` — ``POST <endpoint>/xapi/statements`` with HTTP Basic auth (per tenant) and
  ``X-Experience-API-Version: 2.0.0``, a JSON array per batch; 429, 5xx and connection errors
  are retried with backoff, any other refusal raises :class:`SinkError`;
* :func:`send_kafka` — produce each statement to ``xapi.raw.<tenant>`` (under the topic prefix),
  keyed by the learner reference so one learner's statements stay ordered on one partition.

:class:`Pace` decides when each statement is due: as fast as possible (default), ``rate``
statements per second, or event time replayed ``speedup`` times faster than real time. A batch
holds the statements of one tenant that are due together, at most ``batch_size``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import orjson

from shared.kafka import Topics, TopicSpec, ensure_topics, kafka_admin, kafka_producer
from tools.simulator.simulate import Event

log = logging.getLogger(__name__)

XAPI_VERSION_HEADER: Final = {"X-Experience-API-Version": "2.0.0"}
RETRYABLE: Final = frozenset({408, 429, 500, 502, 503, 504})


class SinkError(RuntimeError):
    """A sink refused the statements for a reason that retrying will not fix."""


@dataclass(frozen=True)
class Pace:
    """When statement ``index`` (event time ``ms``) is due, in seconds after the first."""

    rate: float | None = None
    speedup: float | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and self.speedup is not None:
            raise ValueError("give a rate or a speedup, not both")
        if (self.rate is not None and self.rate <= 0) or (
            self.speedup is not None and self.speedup <= 0
        ):
            raise ValueError("rate and speedup must be positive")

    def due(self, index: int, ms: int, first_ms: int) -> float | None:
        if self.rate is not None:
            return index / self.rate
        if self.speedup is not None:
            return (ms - first_ms) / 1000 / self.speedup
        return None


@dataclass
class SinkStats:
    statements: int = 0
    batches: int = 0
    retries: int = 0
    seconds: float = 0.0
    per_tenant: dict[str, int] = field(default_factory=dict)

    def add(self, batch: Sequence[Event]) -> None:
        self.statements += len(batch)
        self.batches += 1
        tenant = batch[0].tenant
        self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + len(batch)


async def batches(
    events: Iterable[Event],
    pace: Pace,
    batch_size: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[list[Event]]:
    """Group due statements into batches of one tenant, waiting until each one is due
    (``clock`` and ``sleep`` are injectable so tests check the pacing without real time)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    batch: list[Event] = []
    start = clock()
    first_ms: int | None = None
    for index, event in enumerate(events):
        if first_ms is None:
            first_ms = event.ms
        due = pace.due(index, event.ms, first_ms)
        if due is not None:
            wait = start + due - clock()
            if wait > 0:
                if batch:
                    yield batch
                    batch = []
                await sleep(wait)
        if batch and (len(batch) >= batch_size or batch[0].tenant != event.tenant):
            yield batch
            batch = []
        batch.append(event)
    if batch:
        yield batch


def encode_batch(batch: Sequence[Event]) -> bytes:
    return b"[" + b",".join(orjson.dumps(e.statement) for e in batch) + b"]"


async def send_jsonl(
    events: Iterable[Event], path: Path, pace: Pace = Pace(), batch_size: int = 100
) -> SinkStats:
    stats = SinkStats()
    begun = time.monotonic()
    with path.open("wb") as fh:
        async for batch in batches(events, pace, batch_size):
            fh.writelines(
                orjson.dumps(e.statement, option=orjson.OPT_APPEND_NEWLINE) for e in batch
            )
            fh.flush()
            stats.add(batch)
    stats.seconds = time.monotonic() - begun
    return stats


@dataclass(frozen=True)
class HttpTarget:
    """Where and as whom to POST. ``{tenant}`` in ``user`` is replaced by the batch's tenant
    (ingest's Basic usernames are ``<tenant>.<name>``); ``credentials`` overrides per tenant."""

    endpoint: str
    user: str = "{tenant}.simulator"
    password: str = "simulator"  # noqa: S105 - a default for local demos, not a secret
    credentials: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/xapi/statements") else base + "/xapi/statements"

    def authorization(self, tenant: str) -> str:
        """The ``Authorization`` header value for ``tenant`` (HTTP Basic, UTF-8)."""
        user, password = self.credentials.get(
            tenant, (self.user.replace("{tenant}", tenant), self.password)
        )
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


async def _post(
    session: aiohttp.ClientSession, target: HttpTarget, batch: Sequence[Event], retries: int
) -> int:
    """POST one batch; returns the number of retries it took."""
    body = encode_batch(batch)
    headers = {
        **XAPI_VERSION_HEADER,
        "Content-Type": "application/json",
        "Authorization": target.authorization(batch[0].tenant),
    }
    for attempt in range(retries + 1):
        try:
            async with session.post(target.url, data=body, headers=headers) as resp:
                if resp.status < 300:
                    await resp.read()
                    return attempt
                text = (await resp.text())[:500]
                if resp.status not in RETRYABLE or attempt == retries:
                    raise SinkError(f"POST {target.url} answered {resp.status}: {text}")
                log.warning("POST answered %s, retrying: %s", resp.status, text)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            if attempt == retries:
                raise SinkError(f"POST {target.url} failed: {exc!r}") from exc
            log.warning("POST failed, retrying: %r", exc)
        await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def send_http(
    events: Iterable[Event],
    target: HttpTarget,
    pace: Pace = Pace(),
    batch_size: int = 100,
    retries: int = 5,
) -> SinkStats:
    stats = SinkStats()
    begun = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async for batch in batches(events, pace, batch_size):
            stats.retries += await _post(session, target, batch, retries)
            stats.add(batch)
    stats.seconds = time.monotonic() - begun
    return stats


async def create_raw_topics(
    bootstrap: str, topics: Topics, tenants: Iterable[str], partitions: int = 4
) -> list[str]:
    """Create the tenants' raw topics that do not exist yet; returns the names created."""
    async with kafka_admin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        specs = [
            TopicSpec(topics.raw(t), partitions) for t in tenants if topics.raw(t) not in existing
        ]
        return await ensure_topics(admin, specs) if specs else []


async def send_kafka(
    events: Iterable[Event],
    bootstrap: str,
    topics: Topics | None = None,
    pace: Pace = Pace(),
    batch_size: int = 500,
) -> SinkStats:
    stats = SinkStats()
    begun = time.monotonic()
    async with kafka_producer(bootstrap) as producer:
        async for batch in batches(events, pace, batch_size):
            topic = (topics or Topics()).raw(batch[0].tenant)
            futures = [
                await producer.send(
                    topic, orjson.dumps(e.statement), key=e.learner_ref.encode("utf-8")
                )
                for e in batch
            ]
            await asyncio.gather(*futures)
            stats.add(batch)
    stats.seconds = time.monotonic() - begun
    return stats
