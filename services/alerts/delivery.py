"""The webhook delivery worker: sends pending ``deliveries`` rows, signed, with retries.

* Rows are written with each alert change (:mod:`services.alerts.changes`); the stream never
  waits for a webhook.
* A round claims due rows with ``FOR UPDATE SKIP LOCKED`` and leases them (moves
  ``next_attempt_at`` past the request timeout) in a short transaction, so several replicas can
  run workers and no transaction stays open during HTTP.
* Each request is a POST of the alert event's envelope (JSON) with ``X-Skillstream-Signature``
  (see :mod:`services.alerts.signing`), ``X-Skillstream-Event-Id`` (receivers deduplicate by it:
  delivery is at-least-once) and ``X-Skillstream-Delivery-Attempt``.
* A 2xx marks it delivered. Anything else (status, timeout, connection error) is recorded in
  ``delivery_attempts`` and retried after ``backoff * 2**(attempt-1)`` seconds (capped), until
  ``max_attempts``; then the row is ``dead`` (a dead-letter, counted in metrics).
* The outcomes of a round's requests are written together, each attempt with the time its
  answer came, in the statement that claims the next round (one round trip per round under
  load). The worker claims and settles on the connection it listens on (held, not taken from
  the pool and reset each time). Rows claimed when the worker stops wait for their lease.
  The backlog gauge is refreshed at most once per poll interval (a count of pending rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from services.alerts import repository as repo
from services.alerts.metrics import AlertsMetrics
from services.alerts.signing import HEADER, sign

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempted:
    """The outcome of one request, as ``delivery_attempts`` and ``deliveries`` record it."""

    id: int
    attempt: int
    status_code: int | None
    error: str | None
    elapsed_ms: float
    ended_at: datetime  # when the answer (or the failure) came: the attempt row's ``at``
    status: str  # the delivery's status after it: pending (retry), delivered or dead
    next_attempt_at: datetime
    outcome: str  # delivered, retry or dead (the metric's label)
    latency: float  # seconds from the change to this attempt's answer


# Claims due rows and leases them: ``next_attempt_at`` moved past the request timeout.
_DUE = """
due AS (
    SELECT d.id FROM deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() {exclude}
    ORDER BY d.next_attempt_at, d.id
    LIMIT ${limit}
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => ${lease})
FROM due, webhooks w
WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, d.event_id, d.body, d.attempts, d.created_at, w.url, w.secret
"""
_CLAIM = "WITH " + _DUE.format(exclude="", limit=1, lease=2)

# One statement (atomic by itself): a round's outcomes -- an attempt row per request, then each
# delivery's new state -- and the next round claimed (not the rows just settled: a statement
# sees the rows as they were before it).
_SETTLE_AND_CLAIM = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::float8[],
                         $6::timestamptz[], $7::text[], $8::timestamptz[])
        AS u(id, attempt, code, error, duration_ms, ended_at, status, next_at)
), attempts AS (
    INSERT INTO delivery_attempts (delivery_id, attempt, status_code, error, duration_ms, at)
    SELECT id, attempt, code, error, duration_ms, ended_at FROM u
), settled AS (
    UPDATE deliveries AS d SET status = u.status, attempts = u.attempt,
        next_attempt_at = u.next_at, last_status = u.code, last_error = u.error,
        delivered_at = CASE WHEN u.status = 'delivered' THEN clock_timestamp() END
    FROM u
    WHERE d.id = u.id
), """ + _DUE.format(  # noqa: S608 - our own fragments
    exclude="AND d.id <> ALL($1::bigint[])", limit=9, lease=10
)


@dataclass(frozen=True)
class Due:
    id: int
    event_id: str
    body: bytes
    attempts: int
    created_at: datetime
    url: str
    secret: str


def _due(rows: list[Any]) -> list[Due]:
    return [
        Due(
            r["id"],
            str(r["event_id"]),
            r["body"],
            r["attempts"],
            r["created_at"],
            r["url"],
            r["secret"],
        )
        for r in rows
    ]


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Delay after the ``attempt``-th failed attempt (1-based)."""
    return float(min(cap, base * 2 ** (attempt - 1)))


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        metrics: AlertsMetrics,
        *,
        schema: str,
        timeout: float = 5.0,
        max_attempts: int = 8,
        backoff: float = 2.0,
        backoff_max: float = 600.0,
        concurrency: int = 10,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._channel = repo.deliveries_channel(schema)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._backlog_at = float("-inf")  # monotonic time of the last backlog count
        self._next: list[Due] = []  # claimed with the last round's outcomes, not sent yet

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="alerts-webhooks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("the webhook delivery worker is not running")

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        listener: Any = None
        while True:
            try:
                if listener is None:
                    listener = await self._pool.acquire()
                    await listener.add_listener(self._channel, self._on_notify)
                self._wake.clear()
                sent = await self.run_once(listener)
                failures = 0
                if sent < self._concurrency and not self._next:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
            except asyncio.CancelledError:
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await listener.remove_listener(self._channel, self._on_notify)
                    await self._pool.release(listener)
                raise
            except Exception as exc:  # noqa: BLE001 - PostgreSQL away: wait, retry
                failures += 1
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await self._pool.release(listener)
                    listener = None
                pause = min(10.0, self._poll * 2 ** min(failures, 5))
                log.warning(
                    "webhook round failed; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "pause_s": pause},
                )
                await asyncio.sleep(pause)

    async def run_once(self, conn: repo.Conn | None = None) -> int:
        """Send one batch of due deliveries; returns how many were attempted. ``conn``: the
        connection to claim and settle them on (the worker's listening one: no pool round
        trips), else one from the pool for each. The statement settling a round claims the
        next one, sent by the next call (until then its rows stay leased)."""
        lease = self._timeout * 2 + 5
        due, self._next = self._next, []
        async with contextlib.AsyncExitStack() as stack:
            db = conn if conn is not None else await stack.enter_async_context(self._pool.acquire())
            if not due:
                due = _due(await db.fetch(_CLAIM, self._concurrency, lease))
            if time.monotonic() - self._backlog_at >= self._poll:
                self._backlog_at = time.monotonic()
                backlog = await db.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status = 'pending'"
                )
                self._metrics.delivery_backlog.set(int(backlog))
        if not due:
            return 0
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        attempted = await asyncio.gather(*(self._deliver(self._session, d) for d in due))
        self._next = await self._settle(attempted, conn, lease)
        for a in attempted:  # counted once recorded
            self._metrics.deliveries.labels(a.outcome).inc()
            if a.outcome == "delivered":
                self._metrics.delivery_latency.observe(a.latency)
            elif a.outcome == "dead":
                self._metrics.deadletters.labels("webhook", "max_attempts").inc()
                log.warning("webhook delivery dead", extra={"delivery": a.id, "error": a.error})
        return len(due)

    async def _settle(
        self, attempted: list[Attempted], conn: repo.Conn | None, lease: float
    ) -> list[Due]:
        """Record the round's outcomes: one attempt row each, and each delivery's new state
        (on ``conn``, else on one from the pool); returns the next round, claimed."""
        async with contextlib.AsyncExitStack() as stack:
            db = conn if conn is not None else await stack.enter_async_context(self._pool.acquire())
            rows = await db.fetch(
                _SETTLE_AND_CLAIM,
                [a.id for a in attempted],
                [a.attempt for a in attempted],
                [a.status_code for a in attempted],
                [a.error for a in attempted],
                [a.elapsed_ms for a in attempted],
                [a.ended_at for a in attempted],
                [a.status for a in attempted],
                [a.next_attempt_at for a in attempted],
                self._concurrency,
                lease,
            )
        return _due(rows)

    async def _deliver(self, session: aiohttp.ClientSession, due: Due) -> Attempted:
        """One request and its outcome (recorded by :meth:`_settle`)."""
        attempt = due.attempts + 1
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(due.secret, due.body),
            "X-Skillstream-Event-Id": str(due.event_id),
            "X-Skillstream-Delivery-Attempt": str(attempt),
        }
        status: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            async with session.post(due.url, data=due.body, headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000
        ok = status is not None and 200 <= status < 300
        if not ok and error is None:
            error = f"HTTP {status}"
        now = datetime.now(UTC)
        if ok:
            outcome, new_status, next_at = "delivered", "delivered", now
        elif attempt >= self._max_attempts:
            outcome, new_status, next_at = "dead", "dead", now
        else:
            delay = backoff_seconds(attempt, self._backoff, self._backoff_max)
            outcome, new_status, next_at = "retry", "pending", now + timedelta(seconds=delay)
        latency = max(0.0, (now - due.created_at).total_seconds())
        return Attempted(
            due.id, attempt, status, error, elapsed_ms, now, new_status, next_at, outcome, latency
        )
