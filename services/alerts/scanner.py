"""Periodic checks that need a clock rather than an event: inactivity, missed live sessions,
expired snoozes, gauges.

Inactivity has two paths that build the same alert (see :func:`detectors.inactivity_signal`):

* **in the stream**, by event time: when evidence arrives after a gap of ``days`` or more, the
  detector raises the alert as of ``last activity + days`` and resolves it at the new evidence.
  A replay of history therefore yields the same inactivity alerts, opened and resolved;
* **here**, for learners who have *not* come back: every ``scan_seconds`` the scanner compares
  each enrolled learner's last evidence (``learner_activity``, event time) with a reference
  clock, and raises the alert (as of ``last activity + days``) once ``days`` have passed. The
  reference clock is ``now()`` for live data (``ALERTS_INACTIVITY_CLOCK=wall``) or the event
  clock (``event``), which is what a replay must use: with wall time, every historic learner
  would look inactive. The event clock is a low watermark -- the smallest, over the partitions
  of ``progress.updates``, of the largest event time applied from each -- not the largest event
  time seen: partitions are consumed at different speeds, and against the fastest one every
  learner of a lagging partition looked silent (on the simulator bench that was 82 inactivity
  alerts for 10 drop-outs, 11 % precision). A partition that stops receiving anything holds the
  watermark back: in a replay that delays inactivity alerts, it never invents them.

Limits: only learners with a programme on their evidence count as enrolled. When the
programme's calendar is known (``programmes`` table, ``cli programmes set`` or ``load``) nothing
is raised outside it; otherwise the programme is taken as running. The scanner raises at medium
severity; it does not escalate an open alert.

**Missed live sessions** (kind ``missed_sessions``, rules in :mod:`services.alerts.sessions`):
the schedule comes from the framework file (``cli programmes load``, into the alerts schema's
own tables), attendance from the progress updates of kind ``attendance``. Every scan walks the
sessions of each learner that ended (plus the grace) by the same reference clock as inactivity,
or that the learner attended, in one transaction per learner with the walk's position: each
session is decided once, the alert is raised as of the due time of the M-th session missed in
a row and resolved at the attendance that ends the run, so a replay on the event clock gives the
same alerts whenever the scans run. It is its own kind rather than ``inactivity``: one open
alert per learner x kind x competency would otherwise merge "no evidence for N days" with
"attends nothing live but studies", which clear on different evidence (any evidence vs an
attended session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg

from services.alerts import repository as repo
from services.alerts import session_repository as sessions_repo
from services.alerts.changes import Changes, Outcome
from services.alerts.detectors import inactivity_signal
from services.alerts.metrics import AlertsMetrics
from services.alerts.rules import DEFAULTS, DetectorSettings
from services.alerts.sessions import KIND as MISSED
from services.alerts.sessions import Session, expected, walk
from services.alerts.settings_store import SettingsStore

log = logging.getLogger(__name__)


class Scanner:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        changes: Changes,
        settings: SettingsStore,
        metrics: AlertsMetrics,
        *,
        clock: Literal["wall", "event"] = "wall",
        interval: float = 60.0,
        batch: int = 500,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._changes = changes
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._now = now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="alerts-scanner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("the scanner is not running")

    async def _run(self) -> None:
        while True:
            try:
                await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - PostgreSQL away: try at the next tick
                log.warning(
                    "scan failed: %s", exc, extra={"error": f"{type(exc).__name__}: {exc}"[:300]}
                )
            await asyncio.sleep(self._interval)

    async def _shortest_days(self, conn: repo.Conn) -> float:
        rows = await conn.fetch("SELECT settings FROM detector_settings")
        days = [DEFAULTS.inactivity.days]
        for row in rows:
            value = (row["settings"].get("inactivity") or {}).get("days")
            if isinstance(value, int | float) and value > 0:
                days.append(float(value))
        return min(days)

    async def _reference(self, conn: repo.Conn) -> datetime | None:
        return self._now() if self._clock == "wall" else await repo.event_clock(conn)

    async def scan_once(self) -> dict[str, int]:
        """One pass; returns counts (raised inactivity and missed-sessions alerts, unsnoozed
        alerts)."""
        wall = self._now()
        raised = await self.scan_inactivity()
        missed = await self.scan_sessions()
        unsnoozed = 0
        async with self._pool.acquire() as conn:
            due = await repo.snoozes_due(conn, wall, self._batch)
        for alert_id in due:
            outcome = Outcome()
            async with self._pool.acquire() as conn, conn.transaction():
                unsnoozed += await self._changes.unsnooze(conn, alert_id, wall, outcome)
        async with self._pool.acquire() as conn:
            counts = await conn.fetch(
                "SELECT kind, count(*) AS n FROM alerts WHERE status <> 'resolved' GROUP BY kind"
            )
        found = {r["kind"]: int(r["n"]) for r in counts}
        for kind in DetectorSettings.model_fields:
            self._metrics.open_alerts.labels(kind).set(found.get(kind, 0))
        return {"inactivity": raised, MISSED: missed, "unsnoozed": unsnoozed}

    async def scan_inactivity(self) -> int:
        async with self._pool.acquire() as conn:
            ref = await self._reference(conn)
            if ref is None:
                return 0
            shortest = await self._shortest_days(conn)
            silent = await repo.silent_learners(conn, ref - timedelta(days=shortest), self._batch)
        raised = 0
        for learner in silent:
            settings = await self._settings.get(learner.tenant, learner.programme)
            rule = settings.inactivity
            due_at = learner.last_activity + timedelta(days=rule.days)
            if not rule.enabled or due_at > ref:
                continue
            signal = inactivity_signal(
                None,
                learner.last_activity,
                due_at,
                settings,
                programme=learner.programme,
                business_unit=learner.business_unit,
            )
            outcome = Outcome()
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    assert learner.programme is not None
                    if not await repo.programme_running(
                        conn, learner.tenant, learner.programme, ref
                    ):
                        continue
                    decision = await self._changes.apply_signal(
                        conn, learner.tenant, learner.learner_key, signal, outcome
                    )
            except asyncpg.UniqueViolationError:
                continue  # the stream opened it concurrently; it holds the evidence
            self._metrics.signals.labels("inactivity", decision).inc()
            for kind, severity in outcome.opened:
                self._metrics.raised.labels(kind, severity).inc()
                raised += 1
        return raised

    # --- missed live sessions --------------------------------------------------------------

    async def scan_sessions(self) -> int:
        """Walk every learner with a session to decide; returns the alerts opened."""
        async with self._pool.acquire() as conn:
            ref = await self._reference(conn)
            if ref is None:
                return 0
            grace = await self._shortest_grace(conn)
            await sessions_repo.enrol_from_evidence(conn)
        schedules: dict[tuple[str, str], list[Session]] = {}
        opened = 0
        after = ("", "", "")
        while True:
            # one connection for the page: a transaction per learner on it
            async with self._pool.acquire() as conn:
                page = await sessions_repo.candidates(conn, ref, ref - grace, after, self._batch)
                for tenant, programme, learner_key in page:
                    try:
                        opened += await self._walk(
                            conn, (tenant, programme, learner_key), ref, schedules
                        )
                    except asyncpg.UniqueViolationError:
                        continue  # opened concurrently (another programme): next scan
            if len(page) < self._batch:
                return opened
            after = page[-1]

    async def _shortest_grace(self, conn: repo.Conn) -> timedelta:
        rows = await conn.fetch("SELECT settings FROM detector_settings")
        hours = [DEFAULTS.missed_sessions.grace_hours]
        for row in rows:
            value = (row["settings"].get(MISSED) or {}).get("grace_hours")
            if isinstance(value, int | float) and value >= 0:
                hours.append(float(value))
        return timedelta(hours=min(hours))

    async def _walk(
        self,
        conn: repo.Conn,
        who: tuple[str, str, str],
        ref: datetime,
        schedules: dict[tuple[str, str], list[Session]],
    ) -> int:
        """One learner's walk through a programme's sessions (``who``: tenant, programme,
        learner key), in one transaction on ``conn``."""
        tenant, programme, learner_key = who
        settings = await self._settings.get(tenant, programme)
        outcome = Outcome()
        async with conn.transaction():
            learner = await sessions_repo.lock_learner(conn, tenant, programme, learner_key)
            schedule = schedules.get((tenant, programme))
            if schedule is None:
                schedule = await sessions_repo.schedule(conn, tenant, programme)
                schedules[tenant, programme] = schedule
            mine = expected(schedule, learner.cohort, learner.since)
            found = await sessions_repo.walk_inputs(conn, learner, MISSED)
            state, signals = walk(
                learner.walk, mine, found.attended, ref, settings.missed_sessions,
                resolved_at=found.resolved_at, programme=programme,
                business_unit=found.business_unit,
            )  # fmt: skip
            for signal in signals:
                await self._changes.apply_signal(conn, tenant, learner_key, signal, outcome)
            if state != learner.walk:  # else the row already holds it
                await sessions_repo.save_walk(conn, learner, state)
        for kind, decision in outcome.decisions:
            self._metrics.signals.labels(kind, decision).inc()
        for kind, severity in outcome.opened:
            self._metrics.raised.labels(kind, severity).inc()
        return len(outcome.opened)
