"""Soak run: the whole pipeline fed at a steady rate for minutes; lag, memory and loss.

    .venv/bin/python bench/bench_soak.py [--rate 200] [--minutes 8] [--passes 4]
                                           [--warmup-passes 2] [--sample-seconds 5]

Needs the local servers (``make infra-up``); loopback only, bounded (the feed stops after
``--minutes``, the drain after ``--limit`` seconds). ``ingest``, ``progress`` and ``alerts`` run
as subprocesses (:class:`tools.demo.pipeline.Pipeline`, as in ``bench_e2e.py``) and the classroom
simulator's statements are POSTed at ``--rate`` statements/s (``tools.demo.feed.post_statements``
with a steady :class:`~tools.simulator.emit.Pace`, one feeder per tenant with one request in
flight, so a feeder that falls behind sends bigger batches). Every ``--sample-seconds``:

* consumer lag of progress (on ``xapi.statements``) and alerts (on ``progress.updates``), from
  the broker: end offsets minus each Faust consumer group's committed offsets;
* the resident memory (VmRSS in ``/proc/<pid>/status``) of each service process.

Memory is judged on a fixed population: the statements are ``--passes`` passes over one
simulated cohort (sized so that a pass holds ``rate x minutes x 60 / passes`` statements); every
pass after the first sends the same learners' statements again with new statement ids and
timestamps moved on by the simulation's span. The first ``--warmup-passes`` are the warm-up:
the first pass creates every learner x competency state (memory grows with that state by
design, as the progress benchmark measures per learner x competency), the second fills the
bounded windows the first left part-full (alerts keep each competency's last 20 attempts and
mastery points: a competency with 12 attempts in the first pass reaches 20 in the second). After
that no new state appears and the resident memory of a service without a leak stays flat.
Steady state is the passes after the warm-up (with ``--passes 1``: after the first minute, or
the first fifth of a shorter run); the warm-up's RSS slope is reported next to it.
Once the feed stops, the run waits until every stage passed every statement, then counts them:
sent, accepted (ingest's counter), archived (rows in ingest's ``statements`` table), published
(ingest's outbox relay), projected (progress projection), and progress updates published vs
applied by alerts. Lost = everything sent that some stage did not pass once the pipeline drained
(if the drain wait runs out first, it is reported as pending, not lost, and the verdict fails).

Verdict, computed: lag bounded (in each service, the lag's least-squares slope over the steady
state is at most 2 % of the input rate, i.e. the consumer keeps 98 % of the input's pace, and
the lag is 0 after the drain); memory flat (each service's RSS slope over the steady state,
least squares, is at most 1 MiB/min or 1 % of its RSS per minute, whichever is larger); nothing
lost. Prints a markdown section, then one JSON line. ``--smoke``: a tiny run (figures meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from soak_measure import Soak, count_stages, sampler
from soak_report import markdown, summarize

from tools.demo.feed import post_statements, wait_for
from tools.demo.pipeline import Pipeline
from tools.simulator.emit import Pace
from tools.simulator.output import write_files
from tools.simulator.simulate import Config, Event, Simulation, simulate

STATEMENTS_PER_LEARNER = 240  # the simulator's output for 30 days, near enough to size a run


def simulation_for(count: int, seed: int, tenants: int) -> Simulation:
    """A simulation sized to hold ``count`` statements, cut to its first ``count`` (in event-time
    order; its academy, hence its framework files, unchanged)."""
    learners = max(10, math.ceil(count / STATEMENTS_PER_LEARNER * 1.1))
    while True:
        sim = simulate(Config(seed=seed, learners=learners, days=30, tenants=tenants))
        if len(sim.events) >= count:
            sim.events = sim.events[:count]
            return sim
        learners = math.ceil(learners * count / max(1, len(sim.events)) * 1.1)


def recycled(events: list[Event], passes: int) -> list[Event]:
    """``events`` then ``passes - 1`` more passes over the same learners: each statement again
    with a new id (a UUID derived from the original and the pass) and its timestamp (and event
    time) moved on by the whole span of ``events`` plus a day per pass, so event time only
    moves forward and no statement repeats."""
    if passes <= 1 or not events:
        return list(events)
    span = events[-1].ms - events[0].ms + 86_400_000
    out = list(events)
    for k in range(1, passes):
        shift = timedelta(milliseconds=k * span)
        for e in events:
            st = dict(e.statement)
            st["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{st['id']}|pass{k}"))
            stamp = datetime.fromisoformat(st["timestamp"]) + shift
            st["timestamp"] = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            out.append(replace(e, ms=e.ms + k * span, statement=st))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    per_pass = int(args.rate * args.minutes * 60) // args.passes
    sim = simulation_for(per_pass, args.seed, args.tenants)
    events = recycled(sim.events, args.passes)
    n = len(events)
    pipeline = Pipeline(
        name="bench",
        ports={"ingest": 0, "progress": 0, "alerts": 0},
        extra_env={
            "ALERTS_INACTIVITY_CLOCK": "event",
            "PROGRESS_FRAMEWORK_POLL_SECONDS": "1",
            "INGEST_INTAKE_ENABLED": "false",
        },
    )
    sim_dir = pipeline.log_dir / "simulation" if pipeline.log_dir else Path("sim")
    paths = write_files(sim, sim_dir)
    tenants = sorted({e.tenant for e in events})
    soak = Soak()
    stop, feeding = asyncio.Event(), asyncio.Event()
    pipeline.start()
    try:
        await pipeline.wait_ready()
        creds_list = await asyncio.gather(*(pipeline.ingest_credential(t, "soak") for t in tenants))
        creds = dict(zip(tenants, creds_list, strict=True))
        await pipeline.load_frameworks(paths["framework"])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            if not await pipeline.wait_frameworks(http, len(tenants), 60):
                raise SystemExit("the progress worker did not load the frameworks")
            began = time.monotonic()
            feeding.set()
            sampling = asyncio.create_task(
                sampler(pipeline, http, soak, began, args.sample_seconds, feeding, stop)
            )
            try:
                # one feeder per tenant (each tenant's LMS), each at its share of the rate with
                # one request in flight: a feeder that falls behind sends bigger batches
                feeds = await asyncio.gather(
                    *(
                        post_statements(
                            pipeline.url("ingest"),
                            mine,
                            {tenant: creds[tenant]},
                            batch_size=250,
                            pace=Pace(args.rate * len(mine) / n),
                        )
                        for tenant in tenants
                        if (mine := [e for e in events if e.tenant == tenant])
                    )
                )
                feeding.clear()
                fed = max(f.ended for f in feeds) - began
                sent = sum(len(f.accepted_at) for f in feeds)
                retried = sum(f.retried for f in feeds)

                async def drained() -> bool:
                    counts = await count_stages(pipeline, http)
                    return (
                        min(counts[s] for s in ("archived", "published", "projected")) >= n
                        and counts["processed"] >= n
                        and counts["updates applied by alerts"] >= counts["updates published"]
                    )

                drained_at = await wait_for(drained, args.limit, every=1.0)
                # a few samples after the drain: lag must be back to 0
                await asyncio.sleep(2 * args.sample_seconds + 1)
            finally:
                stop.set()
                await asyncio.gather(sampling, return_exceptions=True)
            counts = await count_stages(pipeline, http)
    finally:
        pipeline.stop()
        await pipeline.cleanup()
        shutil.rmtree(sim_dir, ignore_errors=True)
    result = summarize(args, n, soak, fed, drained_at, began, counts, sent)
    result["learners"] = len({(e.tenant, e.learner) for e in sim.events})
    result["retried_503"] = retried
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="statements/s")
    parser.add_argument("--minutes", type=float, default=8.0, help="how long to feed")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument(
        "--passes", type=int, default=4, help="passes over one cohort (see --warmup-passes)"
    )
    parser.add_argument(
        "--warmup-passes", type=int, default=2, help="passes not in the steady state"
    )
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=600, help="longest drain wait, s")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (tests)")
    args = parser.parse_args()
    if args.smoke:
        args.rate, args.minutes, args.sample_seconds = 50.0, 0.4, 1.5
    result = asyncio.run(run(args))
    command = ".venv/bin/python bench/bench_soak.py " + " ".join(sys.argv[1:])
    print(markdown(result, command.strip()))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
