"""The simulator-driven end-to-end run: throughput of the whole pipeline (flood), and latency
from statement accepted to webhook delivered at sustained rates.

    .venv/bin/python bench/bench_e2e.py [--learners 200] [--days 30] [--seed 7]
                                        [--rate 1000 [500 ...] --seconds 60] [--no-flood]

Flood mode (unless ``--no-flood``):

Needs the local servers (``make infra-up``). The classroom simulator's statements are POSTed in
event-time order (batches of 250 of one tenant, one request in flight) to
``python -m services.ingest``, with ``progress`` and ``alerts`` running as subprocesses (schemas
and topic prefix of their own, deleted after). Each stage is timed from the first POST to the
moment the last statement passed it, read from the services' own counters:

* accepted: every POST answered 200 (archived in PostgreSQL);
* published: ingest's outbox relayed every statement to ``xapi.statements``;
* projected: the progress worker projected every statement into PostgreSQL
  (``skillstream_progress_projection_batch_size`` sum);
* alerts applied: the alerts service applied every progress update.

Baseline, same run, same broker: a plain aiokafka producer sending the same statement bytes
(the ceiling for anything that moves them through Kafka).

Sustained mode (``--rate``, one fresh pipeline per rate, ``rate x seconds`` statements of a
simulation sized for it): see ``bench/e2e_sustained.py`` -- statements POSTed at a steady rate,
a webhook receiver subscribed through the alerts routing config, p50/p95/p99 of statement
accepted -> webhook received, the achieved rate and whether each stage kept up.

Prints a markdown section, then one JSON line. ``--smoke``: tiny runs of both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e_sustained import run_sustained
from e2e_sustained_report import markdown as sustained_markdown

from shared.kafka import TopicSpec, ensure_topics, kafka_admin, kafka_producer
from tools.demo.feed import post_statements, wait_for
from tools.demo.metrics import parse_metrics, read_metrics
from tools.demo.pipeline import Pipeline
from tools.simulator.output import write_files
from tools.simulator.simulate import Config, Simulation, simulate

STAGES = ("accepted", "published", "projected", "alerts applied")


async def raw_producer(bootstrap: str, topic: str, values: list[bytes]) -> float:
    """Statements/s of a plain producer (linger 5 ms), acknowledged."""
    async with kafka_producer(bootstrap, linger_ms=5) as producer:
        began = time.monotonic()
        futures = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*futures)
        return len(values) / (time.monotonic() - began)


def new_pipeline() -> Pipeline:
    return Pipeline(
        name="bench",
        ports={"ingest": 0, "progress": 0, "alerts": 0},
        extra_env={
            "ALERTS_INACTIVITY_CLOCK": "event",
            "PROGRESS_FRAMEWORK_POLL_SECONDS": "1",
            "INGEST_INTAKE_ENABLED": "false",
            "INGEST_DB_POOL_MAX": "20",
        },
    )


@asynccontextmanager
async def started(
    pipeline: Pipeline, sim: Simulation
) -> AsyncIterator[tuple[aiohttp.ClientSession, dict[str, tuple[str, str]]]]:
    """The three services running with the simulation's frameworks loaded; ingest credentials
    per tenant. Stopped, topics and schemas deleted on exit."""
    sim_dir = pipeline.log_dir / "simulation" if pipeline.log_dir else Path("sim")
    paths = write_files(sim, sim_dir)
    tenants = sorted({e.tenant for e in sim.events})
    pipeline.start()
    try:
        await pipeline.wait_ready()
        creds_list = await asyncio.gather(
            *(pipeline.ingest_credential(t, "bench") for t in tenants)
        )
        await pipeline.load_frameworks(paths["framework"])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            if not await pipeline.wait_frameworks(http, len(tenants), 60):
                raise SystemExit("the progress worker did not load the frameworks")
            yield http, dict(zip(tenants, creds_list, strict=True))
    finally:
        pipeline.stop()
        await pipeline.cleanup()
        shutil.rmtree(sim_dir, ignore_errors=True)


async def flood(args: argparse.Namespace) -> dict[str, Any]:
    sim = simulate(
        Config(seed=args.seed, learners=args.learners, days=args.days, tenants=args.tenants)
    )
    n = len(sim.events)
    pipeline = new_pipeline()
    out: dict[str, Any] = {"statements": n, "learners": len(sim.learners)}
    values = [orjson.dumps(e.statement) for e in sim.events]
    baseline_topic = f"{pipeline.prefix}baseline"
    async with kafka_admin(pipeline.bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(baseline_topic, 4)])
    out["raw_producer_per_s"] = await raw_producer(pipeline.bootstrap, baseline_topic, values)
    async with started(pipeline, sim) as (http, creds):
        posted = await post_statements(pipeline.url("ingest"), sim.events, creds)
        done: dict[str, float] = {"accepted": posted.ended}

        async def passed(stage: str) -> bool:
            pages = await pipeline.metric_pages(http)
            m = read_metrics(pages)
            if stage == "published":
                return m.published >= n
            if stage == "projected":
                samples = parse_metrics(pages.get("progress", ""))
                projected = sum(
                    v for _, v in samples.get("skillstream_progress_projection_batch_size_sum", [])
                )
                return projected >= n
            return m.processed >= n and m.alerts_applied >= m.updates > 0

        for stage in STAGES[1:]:
            at = await wait_for(lambda s=stage: passed(s), args.limit, every=0.1)  # type: ignore[misc]
            if at is None:
                raise SystemExit(f"stage {stage!r} not reached in {args.limit} s")
            done[stage] = at
        m = await pipeline.metrics(http)
    out["stages"] = {
        stage: {"seconds": done[stage] - posted.began, "per_s": n / (done[stage] - posted.began)}
        for stage in STAGES
    }
    out["updates"] = m.updates
    out["alerts_raised"] = m.raised_total
    return out


async def sustained(args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """``rate x seconds`` statements (the first ones, in event-time order, of a simulation of
    ``--days`` days with enough learners) at ``rate`` through a fresh pipeline."""
    wanted = max(1, round(rate * args.seconds))
    per_learner = 8.0 * args.days  # about 8.3 statements per learner and day (the simulator)
    learners = max(args.tenants * 2, math.ceil(wanted / per_learner * 1.1))
    sim = simulate(Config(seed=args.seed, learners=learners, days=args.days, tenants=args.tenants))
    events = sim.events[:wanted]
    pipeline = new_pipeline()
    async with started(pipeline, sim) as (http, creds):
        result = await run_sustained(
            pipeline, http, events, creds, rate=rate, lanes=args.lanes, limit=args.limit
        )
    result["learners"] = learners
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not args.no_flood:
        out = await flood(args)
    out["sustained"] = [await sustained(args, rate) for rate in args.rate]
    return out


def markdown(r: dict[str, Any], command: str) -> str:
    lines = ["## End-to-end pipeline (simulator -> ingest -> progress -> alerts)", ""]
    if "stages" in r:
        base = r["raw_producer_per_s"]
        lines += [
            (
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: flood, {r['statements']:,} "
                f"simulated statements from {r['learners']} learners as fast as ingest takes them; "
                f"{int(r['updates']):,} mastery updates, {int(r['alerts_raised'])} alerts raised."
            ),
            "",
            (
                "| stage (timed from the first POST) | statements | seconds | statements/s | "
                "vs raw producer |"
            ),
            "| --- | ---: | ---: | ---: | ---: |",
            (
                f"| baseline: aiokafka producer, same bytes | {r['statements']} | "
                f"{r['statements'] / base:.2f} | {base:,.0f} | 100.0% |"
            ),
        ]
        for stage in STAGES:
            s = r["stages"][stage]
            lines.append(
                f"| {stage} | {r['statements']} | {s['seconds']:.2f} | {s['per_s']:,.0f} | "
                f"{s['per_s'] / base:.1%} |"
            )
        lines.append("")
    if r["sustained"]:
        lines += sustained_markdown(r["sustained"])
    lines += ["", f"    {command}"]  # last: bench/run_all.py quotes the command itself
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=200, help="flood: simulated learners")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=600, help="longest wait per stage, s")
    parser.add_argument(
        "--rate", type=float, nargs="*", default=[], help="sustained mode: statements/s, each"
    )
    parser.add_argument("--seconds", type=float, default=60, help="sustained mode: duration")
    parser.add_argument("--lanes", type=int, default=2, help="sustained: requests in flight/tenant")
    parser.add_argument("--no-flood", action="store_true", help="sustained mode only")
    parser.add_argument("--smoke", action="store_true", help="tiny runs of both modes (tests)")
    args = parser.parse_args()
    if args.smoke:
        args.learners, args.days = 20, 5
        args.rate, args.seconds = [200.0], 5.0
    if args.no_flood and not args.rate:
        parser.error("--no-flood needs --rate")
    result = asyncio.run(run(args))
    command = ".venv/bin/python bench/bench_e2e.py " + " ".join(sys.argv[1:])
    print(markdown(result, command.strip()))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
