"""kill -9 of the progress worker and of the alerts worker mid-stream, against an undisturbed run.

Two runs of ``python -m services.progress`` and ``python -m services.alerts`` (real subprocesses,
static group membership as deployed) on the shared servers, each with a topic prefix and schemas
of its own, get the same deterministic input: the classroom simulator's statements, prepared as
ingest prepares them and published to ``xapi.statements``. The *reference* run gets it all at
once and is left alone. The *crashed* run gets it at a steady pace; once a quarter of it is
projected the progress worker is killed with SIGKILL and restarted (publishing goes on), and once
about half the progress updates are applied the alerts worker is killed and restarted; each kill
waits for a moment when the worker has handled records its group has not committed yet (its
watermarks are ahead of the committed offsets), so the restarted worker is sure to see work
again. When both
runs have drained:

* progress: every projection table is equal to the reference's, every watermark is at the end
  of its partition, the attempts per learner x competency are the number of attempt statements
  (counted from the input with the framework's evidence rules, not by the worker) and the events
  per learner the number of statements: nothing lost, nothing counted twice;
* alerts: the same alerts (one that is not resolved per learner x kind x competency), with the
  same lifecycle histories, activity, clocks and inbox as the reference; every history entry was
  published on ``alerts.events`` (copies of one event id are identical: delivery is
  at-least-once, readers deduplicate by event id), and the distinct events are the reference's;
* the restarted workers did see redelivered work (so the kills did hit the stream mid-way).

The inactivity *scanner* raises by the event clock of the moment it runs (at every start, so
twice more in the crashed run): a programme calendar outside the simulated weeks keeps it quiet
here; the stream's own inactivity path (by event time) still runs in both runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.integration.resilience.crash_run import DRAIN, Load, Run, publish, until
from tests.integration.resilience.crash_state import (
    alert_events,
    alerts_state,
    end_offsets,
    progress_state,
)

pytestmark = pytest.mark.timeout(240)


async def test_kill_9_progress_and_alerts_workers_mid_stream(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    load = Load()
    n = len(load)
    calm = Run("calm", tmp_path, kafka_bootstrap, database_url)
    hit = Run("crash", tmp_path, kafka_bootstrap, database_url)
    feeding: asyncio.Task[None] | None = None
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(calm.setup(load), hit.setup(load))
            for run in (calm, hit):
                run.start("progress")
                run.start("alerts")
            for run in (calm, hit):
                await run.ready("progress", http)
                await run.ready("alerts", http)
            await publish(kafka_bootstrap, calm.topics.statements, load.items, pace=False)
            feeding = asyncio.create_task(
                publish(kafka_bootstrap, hit.topics.statements, load.items, pace=True)
            )

            # progress: killed once a quarter is projected, while statements keep coming, at a
            # moment when projected statements are not committed yet (so it sees them again)
            async def quarter() -> bool:
                return await hit.projected() >= n // 4 and await hit.uncommitted("progress") > 0

            await until(quarter, 60, "a quarter of the statements projected (crashed run)")
            hit.kill("progress")
            killed_at = await hit.projected()
            assert killed_at < n, "the progress worker had finished before it was killed"
            hit.start("progress")
            await hit.ready("progress", http)

            # the reference: everything projected; its update count is what alerts must apply
            async def calm_progress_done() -> bool:
                processed = await calm.metric(
                    "progress", http, "skillstream_progress_events_processed_total"
                )
                return await calm.projected() == n and sum(processed.values()) == n

            await until(calm_progress_done, DRAIN, "reference run projected")
            published = await calm.metric(
                "progress", http, "skillstream_progress_updates_published_total"
            )
            updates = sum(published.values())
            assert updates >= n

            # alerts: killed once about half the updates are applied
            async def half() -> bool:
                return await hit.applied() >= updates // 2 and await hit.uncommitted("alerts") > 0

            await until(half, DRAIN, "half the updates applied (crashed run)")
            hit.kill("alerts")
            applied_at = await hit.applied()
            assert applied_at < updates, "the alerts worker had finished before it was killed"
            hit.start("alerts")
            await hit.ready("alerts", http)
            await feeding

            for run in (calm, hit):

                async def counts(run: Run = run) -> tuple[int, int, int]:
                    return await run.projected(), await run.applied(), await run.unpublished()

                async def drained(
                    counts: Callable[[], Awaitable[tuple[int, int, int]]] = counts,
                ) -> bool:
                    return await counts() == (n, updates, 0)

                await until(
                    drained,
                    DRAIN,
                    f"{run.pipeline.prefix} drained to {(n, updates, 0)}",
                    seen=counts,
                )

            # the restarted workers did get work again that was done before the kill
            again = await hit.metric(
                "progress", http, "skillstream_progress_statements_redelivered_total"
            )
            skipped = await hit.metric(
                "progress", http, "skillstream_progress_projection_skipped_total"
            )
            outcomes = await hit.metric("alerts", http, "skillstream_alerts_progress_updates_total")
            assert sum(again.values()) + sum(skipped.values()) > 0, (again, skipped)
            assert outcomes.get("outcome=duplicate", 0) > 0, outcomes

            # --- progress: equal projections; nothing lost, nothing counted twice ----------
            for run in (calm, hit):
                marks = await run.q("progress", 'SELECT partition, "offset" FROM watermarks')
                ends = await end_offsets(run)
                assert {r["partition"]: r["offset"] + 1 for r in marks} == ends
                counted = await run.q(
                    "progress",
                    "SELECT tenant, learner_key, competency, attempts FROM learner_competency",
                )
                attempts = {(r[0], r[1], r[2]): r[3] for r in counted if r[3]}
                wrong = {
                    k: (v, load.attempts.get(k))
                    for k, v in attempts.items()
                    if v != load.attempts.get(k)
                } | {k: (None, v) for k, v in load.attempts.items() if k not in attempts}
                assert not wrong, f"{run.pipeline.prefix} attempts (counted, in the input): {wrong}"
                activity = await run.q(
                    "progress", "SELECT tenant, learner_key, events FROM learner_activity"
                )
                assert {(r[0], r[1]): r[2] for r in activity} == dict(load.statements)

            expected = await progress_state(calm)
            got = await progress_state(hit)
            for table, table_rows in expected.items():
                assert got[table] == table_rows, f"progress.{table} differs after the crash"
            # --- alerts: the same alerts and lifecycles, no duplicate ----------------------
            want, have = await alerts_state(calm), await alerts_state(hit)
            assert want["alerts"], "the input raised no alert: the comparison would be empty"
            for part in want:
                assert have[part] == want[part], f"alerts {part} differ after the crash"
            doubles = await hit.q(
                "alerts",
                "SELECT tenant, learner_key, kind, competency FROM alerts"
                " WHERE status <> 'resolved' GROUP BY 1, 2, 3, 4 HAVING count(*) > 1",
            )
            assert doubles == []
            events = []
            for run in (calm, hit):
                ids = {
                    r["event_id"]
                    for r in await run.q("alerts", "SELECT event_id FROM alert_history")
                }
                events.append(await alert_events(run, ids))
            assert events[1] == events[0]
    finally:
        if feeding is not None and not feeding.done():
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
        await asyncio.gather(calm.close(), hit.close())
