"""Applies one progress update: detectors on the learner's state, then one PostgreSQL
transaction for the signals. Called by the Faust agent (:mod:`services.alerts.agents`).

Exactly-once effect under at-least-once delivery:

* the transaction first inserts the update's ``event_id`` into ``inbox``; if it was there, the
  update was applied before (a redelivery) and nothing else is written;
* the learner's detector state is written to the Faust table only *after* that transaction
  commits. A crash in between redelivers the update against the old state, which computes the
  same signals, and the inbox drops them; a crash after the table write (changelog sent) but
  before the offset commit finds the event id in the state's ``seen`` list and skips it;
* PostgreSQL away: the transaction is retried with back-off (the partition waits, nothing is
  lost); a message that cannot be decoded or breaks a detector goes to
  ``progress.updates.deadletter`` with its reason and never blocks the partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import asyncpg
import orjson
from pydantic import ValidationError

from services.alerts import repository as repo
from services.alerts.changes import Changes, Outcome
from services.alerts.detectors import evaluate
from services.alerts.metrics import AlertsMetrics
from services.alerts.rules import DetectorSettings, resolve
from services.alerts.state import LearnerState, Signal
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.errors import PermanentError, is_retriable
from shared.events import ProgressUpdate

log = logging.getLogger(__name__)

_T = TypeVar("_T")
ACCEPTED = frozenset({PROGRESS_UPDATE_V1})

#: ``(key, original value, reason, message)`` -> sent to the dead-letter topic
DeadLetter = Callable[[bytes | None, bytes, str, str], Awaitable[None]]


class SettingsStore:
    """Detector settings per (tenant, programme), read from ``detector_settings`` and cached."""

    def __init__(
        self, pool: asyncpg.Pool[Any], ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[DetectorSettings, float]] = {}

    async def get(self, tenant: str, programme: str | None) -> DetectorSettings:
        key = (tenant, programme or "")
        hit = self._cache.get(key)
        now = self._clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self._pool.acquire() as conn:
            tenant_wide, per_programme = await repo.detector_overrides(conn, tenant, programme)
        settings = resolve(tenant_wide, per_programme)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (settings, now + self._ttl)
        return settings

    def forget(self) -> None:
        self._cache.clear()


def deadletter_record(key: bytes | None, raw: bytes, reason: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "reason": reason,
            "message": message[:1000],
            "key": key.decode("utf-8", "replace") if key else None,
            "original": raw.decode("utf-8", "replace"),
        }
    )


class Processor:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        changes: Changes,
        settings: SettingsStore,
        metrics: AlertsMetrics,
        deadletter: DeadLetter,
        *,
        retry_max: float = 10.0,
    ) -> None:
        self._pool = pool
        self._changes = changes
        self._settings = settings
        self._metrics = metrics
        self._deadletter = deadletter
        self._retry_max = retry_max

    async def _dead(self, key: bytes | None, raw: bytes, reason: str, message: str) -> None:
        log.warning(
            "progress update dead-lettered: %s %s",
            reason,
            message,
            extra={"reason": reason, "error": message},
        )
        self._metrics.deadletters.labels("stream", reason).inc()
        self._metrics.updates.labels("deadletter").inc()
        await self._deadletter(key, raw, reason, message)

    async def process(
        self, key: bytes | None, raw: bytes, table: MutableMapping[bytes, bytes]
    ) -> str:
        """Handle one record; returns ``applied``, ``duplicate`` or ``deadletter``."""
        started = time.perf_counter()
        try:
            env = Envelope.parse(raw, ACCEPTED)
            update = ProgressUpdate.model_validate(env.payload)
        except PermanentError as exc:
            await self._dead(key, raw, exc.reason, str(exc))
            return "deadletter"
        except ValidationError as exc:
            await self._dead(key, raw, "invalid_payload", str(exc.errors()[0]))
            return "deadletter"
        state = LearnerState.from_bytes(table.get(env.key))
        if str(env.event_id) in state.seen:
            self._metrics.updates.labels("duplicate").inc()
            return "duplicate"
        try:
            settings = await self._retrying(
                lambda: self._settings.get(env.tenant, update.programme or state.programme)
            )
            new_state, signals = evaluate(state, env, update, settings)
            applied = await self._retrying(lambda: self.apply(env, update, signals))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug or bad data must not stop the partition
            await self._dead(key, raw, "processing_error", f"{type(exc).__name__}: {exc}")
            return "deadletter"
        table[env.key] = new_state.to_bytes()
        self._metrics.process_latency.observe(time.perf_counter() - started)
        outcome = "applied" if applied else "duplicate"
        self._metrics.updates.labels(outcome).inc()
        return outcome

    async def _retrying(self, step: Callable[[], Awaitable[_T]]) -> _T:
        failures = 0
        while True:
            try:
                return await step()
            except Exception as exc:
                # a unique violation: the inactivity scanner opened the same alert concurrently;
                # the retried transaction sees it and adds evidence instead
                if not (is_retriable(exc) or isinstance(exc, asyncpg.UniqueViolationError)):
                    raise
                failures += 1
                self._metrics.apply_retries.inc()
                pause = min(self._retry_max, 0.1 * 2**failures)
                log.warning(
                    "progress update not applied yet; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "pause_s": pause},
                )
                await asyncio.sleep(pause)

    async def apply(self, env: Envelope, update: ProgressUpdate, signals: list[Signal]) -> bool:
        """The update's one transaction; False when its event id was applied before."""
        outcome = Outcome()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await repo.claim_event(conn, env.event_id):
                return False
            await repo.touch_activity(
                conn,
                tenant=env.tenant,
                learner_key=env.learner_key,
                at=env.occurred_at,
                programme=update.programme,
                business_unit=update.business_unit,
            )
            await repo.advance_clock(conn, env.occurred_at)
            for signal in signals:
                await self._changes.apply_signal(conn, env.tenant, env.learner_key, signal, outcome)
        for kind, decision in outcome.decisions:
            self._metrics.signals.labels(kind, decision).inc()
        for kind, severity in outcome.opened:
            self._metrics.raised.labels(kind, severity).inc()
        return True
