"""Alert quality against the simulator's ground truth, through the real pipeline.

    .venv/bin/python bench/bench_alert_quality.py [--learners 200] [--days 30] [--seed 7]

Needs the local servers (``make infra-up``). The classroom simulator generates an academy with
known truth (``truth.jsonl``: archetypes, the moments learners truly stalled -- 10 consecutive
attempts on a competency while it was truly unknown -- and dropped out). Its statements are
POSTed as fast as ingest takes them to ``python -m services.ingest``, ``progress`` and ``alerts``
started as subprocesses (schemas and topic prefix of their own, deleted after; the inactivity
scanner on event time). Then the alerts in the alerts schema are matched to the truth
(``bench/alert_truth.py``, shared with the offline replay ``bench/alert_replay.py``), by
learner key (computed from the simulator's actor IFIs with ``shared.identity.learner_key`` and
the services' salt) and competency:

* wheel-spinning alerts vs true stalls: precision and recall over learner x competency pairs,
  detection delay in event time (alert ``first_seen_at`` - the stall's 10th unknown attempt;
  negative = flagged before the truth called it a stall) and in attempts on that competency.
  A stall is matched to the first alert on its pair that was still open when the stall's run
  of unknown attempts began (an alert resolved before then was about something else: it does
  not count as detecting the stall, nor does its time count as the delay);
* baseline in the same run: the classic Beck & Gong (2013) rule -- wheel-spinning when 10
  attempts pass without 3 correct in a row -- computed offline on the same statements;
* beside them, an upper bound, not a detector: the Bayes filter of ``bench/stall_ceiling.py``,
  which knows each learner's true parameters and which attempts were gamed -- the calibration
  of its posteriors, the best precision at recall >= 95 % and the best recall at precision >=
  75 % over thresholds of its posterior after every answer on a pair (hindsight), and an online
  variant flagging with fixed thresholds (precision, recall and delays as for the alerts);
* false alarms: share of learners of each archetype with an alert of each kind;
* gaming alerts vs the gamer archetype, inactivity and missed-live-sessions alerts vs drop-outs
  (per learner; drop-outs' attendance fades before they stop);
* end-to-end latency, wall time: from the POST that carried a statement being answered by ingest
  to the ``opened`` record on ``alerts.events`` that statement caused (its
  ``cause_statement_id``; measured under the full load of the run: the figure includes
  queueing).

Prints a markdown section, then one JSON line with the figures. ``--smoke``: a tiny run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alert_truth import (
    ARCHETYPES,
    KINDS,
    Pair,
    beck_gong,
    ceiling_figures,
    detection,
    match_wheel,
    per_learner,
    ratio,
    read_truth,
    vs_dropouts,
)

from shared.kafka import Topics
from tools.demo.feed import EventLog, follow, percentile, post_statements, wait_for
from tools.demo.pipeline import Pipeline, tenants_of
from tools.simulator.output import write_files
from tools.simulator.simulate import Config, simulate


async def run(args: argparse.Namespace) -> dict[str, Any]:  # noqa: PLR0915
    began = time.monotonic()
    sim = simulate(
        Config(seed=args.seed, learners=args.learners, days=args.days, tenants=args.tenants)
    )
    pipeline = Pipeline(
        name="bench",
        ports={"ingest": 0, "progress": 0, "alerts": 0},
        extra_env={
            "ALERTS_INACTIVITY_CLOCK": "event",
            "ALERTS_SCAN_SECONDS": "1",
            "PROGRESS_FRAMEWORK_POLL_SECONDS": "1",
            "INGEST_INTAKE_ENABLED": "false",
            "INGEST_DB_POOL_MAX": "20",
        },
    )
    out: dict[str, Any] = {"statements": len(sim.events), "learners": len(sim.learners)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(sim, Path(tmp))
        truth = read_truth(sim, paths["truth"], pipeline.salt)
        tenants = tenants_of(paths["framework"])
        stop = asyncio.Event()
        log = EventLog()
        follower: asyncio.Task[None] | None = None
        pipeline.start()
        try:
            await pipeline.wait_ready()
            creds = dict(
                zip(
                    tenants,
                    await asyncio.gather(
                        *(pipeline.ingest_credential(t, "bench") for t in tenants)
                    ),
                    strict=True,
                )
            )
            await pipeline.load_frameworks(paths["framework"])
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                if not await pipeline.wait_frameworks(http, len(tenants), 60):
                    raise SystemExit("the progress worker did not load the frameworks")
                topic = Topics(pipeline.prefix).alerts_events
                follower = asyncio.create_task(follow(pipeline.bootstrap, topic, log, stop))
                await asyncio.wait_for(log.ready.wait(), 60)
                posted = await post_statements(pipeline.url("ingest"), sim.events, creds)
                n = len(sim.events)

                async def drained() -> bool:
                    m = await pipeline.metrics(http)
                    return m.processed >= n and m.alerts_applied >= m.updates > 0

                if await wait_for(drained, args.limit) is None:
                    m = await pipeline.metrics(http)
                    raise SystemExit(f"the pipeline did not drain in {args.limit} s: {m}")
                await asyncio.sleep(args.settle)  # last inactivity scan and outbox relay
                metrics = await pipeline.metrics(http)
            conn = await asyncpg.connect(pipeline.dsn)
            try:
                rows = await conn.fetch(
                    f"SELECT learner_key, kind, competency, first_seen_at, resolved_at, evidence "
                    f'FROM "{pipeline.schemas["alerts"]}".alerts ORDER BY first_seen_at'
                )
            finally:
                await conn.close()
        finally:
            stop.set()
            if follower is not None:
                await asyncio.gather(follower, return_exceptions=True)
            pipeline.stop()
            await pipeline.cleanup()
    out["post_seconds"] = round(posted.ended - posted.began, 2)
    out["wall_seconds"] = round(time.monotonic() - began, 1)
    out["alerts_by_kind"] = dict(metrics.raised)

    # wheel-spinning: per pair, the alert open when its stall began (else the first)
    wheel: dict[Pair, tuple[datetime, int]] = {}
    stale: set[Pair] = set()
    by_kind: dict[str, set[str]] = defaultdict(set)
    first_seen: dict[str, dict[str, datetime]] = defaultdict(dict)
    for row in rows:
        lk, kind, comp, first = (
            row["learner_key"],
            row["kind"],
            row["competency"],
            row["first_seen_at"],
        )
        by_kind[kind].add(lk)
        if kind == "wheel_spinning":
            match_wheel(wheel, stale, (lk, comp), first, row["resolved_at"], truth)
        if kind in ("inactivity", "missed_sessions"):
            first_seen[kind].setdefault(lk, first)
    out["wheel_pipeline"] = detection(wheel, truth, frozenset(stale))
    out["wheel_baseline"] = detection(beck_gong(truth.attempts), truth)
    out["true_stalls"] = len(truth.stalls)
    out.update(ceiling_figures(truth))

    gamers = {k for k, a in truth.archetype.items() if a == "gamer"}
    out["gaming"] = per_learner(by_kind["gaming"], gamers)
    out["inactivity"] = vs_dropouts(by_kind["inactivity"], first_seen["inactivity"], truth)
    out["missed_sessions"] = vs_dropouts(
        by_kind["missed_sessions"], first_seen["missed_sessions"], truth
    )

    archetype_sizes: dict[str, int] = defaultdict(int)
    for a in truth.archetype.values():
        archetype_sizes[a] += 1
    out["by_archetype"] = {
        a: {
            "learners": archetype_sizes[a],
            **{
                k: ratio(
                    sum(1 for lk in by_kind[k] if truth.archetype.get(lk) == a), archetype_sizes[a]
                )
                for k in KINDS
            },
        }
        for a in ARCHETYPES
        if archetype_sizes[a]
    }
    false_wheel = [
        p
        for p in wheel
        if p not in truth.stalls and truth.archetype.get(p[0]) in {"fast", "typical"}
    ]
    out["false_wheel_fast_typical"] = len(false_wheel)

    latencies = []
    for rec in log.records:
        payload = rec.envelope.get("payload", {})
        if payload.get("action") != "opened":
            continue
        cause = payload.get("cause_statement_id")
        if cause in posted.accepted_at:
            latencies.append(rec.at - posted.accepted_at[cause])
    out["latency"] = {
        "n": len(latencies),
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "max_s": max(latencies, default=float("nan")),
    }
    return out


def pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def num(x: float, fmt: str = ".1f") -> str:
    return "-" if math.isnan(x) else format(x, fmt)


def markdown(r: dict[str, Any], command: str) -> str:
    wp, wb, co = r["wheel_pipeline"], r["wheel_baseline"], r["ceiling_online"]
    hs = r["ceiling_hindsight"]
    ceil = "ceiling, not a detector (knows the hidden parameters)"
    lines = [
        "## Alert quality (`services/alerts`, fed by the whole pipeline)",
        "",
        f"    {command}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {r['statements']:,} simulated "
        f"statements from {r['learners']} learners POSTed in {r['post_seconds']} s, "
        f"{r['true_stalls']} true stalls (learner x competency); wall time {r['wall_seconds']} s. "
        f"Alerts raised: "
        + ", ".join(f"{k} {int(v)}" for k, v in sorted(r["alerts_by_kind"].items())),
        "",
        (
            "| detector | flagged | precision | recall | median delay, event time | "
            "median delay, attempts | flagged before the true stall |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d in (
        ("wheel-spinning alerts (pipeline) vs true stalls", wp),
        ("baseline: Beck & Gong 10-attempt rule, offline on the same statements", wb),
        (
            (
                f"{ceil}, online: flag at P(stalled by the next attempt) >= {co['early']} "
                f"or P(stalled by now) >= {co['late']}"
            ),
            co,
        ),
    ):
        lines.append(
            f"| {name} | {d['flagged']} | {pct(d['precision'])} | {pct(d['recall'])} | "
            f"{num(d['delay_h_median'])} h | {num(d['delay_attempts_median'], '+.0f')} | "
            f"{pct(d['early_share'])} |"
        )
    for name, h in (
        ("best precision at recall >= 95%", hs["best_precision_at_recall_95"]),
        ("best recall at precision >= 75%", hs["best_recall_at_precision_75"]),
    ):
        lines.append(
            f"| {ceil}, in hindsight: {name} (P(stalled, given every answer on the pair) >= "
            f"{num(h['threshold'], '.3f')}) | {h['flagged']} | {pct(h['precision'])} | "
            f"{pct(h['recall'])} | - | - | - |"
        )
    lines += [
        "",
        (
            "The ceilings are a Bayes filter that knows each learner's true parameters and which "
            "attempts were gamed (`bench/stall_ceiling.py`). In hindsight (every answer on a "
            "pair seen) no detector, which sees only the statements, can do better in "
            "expectation (on one cohort, chance can put one a few points above), so a target "
            "the hindsight rows miss is out of any detector's reach; the online row is the same "
            "filter flagging as the answers come, with fixed thresholds. Its final posteriors "
            f"sum to {hs['expected_stalls']:.1f} (+/- {hs['expected_stalls_sd']:.1f} if right) "
            f"for {hs['true_stalls']} true stalls."
        ),
    ]
    g, i, s = r["gaming"], r["inactivity"], r["missed_sessions"]
    lines += [
        "",
        "| per learner | flagged | precision | recall | note |",
        "| --- | ---: | ---: | ---: | --- |",
        (
            f"| gaming alerts vs gamer archetype | {g['flagged']} | {pct(g['precision'])} | "
            f"{pct(g['recall'])} | |"
        ),
        (
            f"| inactivity alerts vs drop-outs | {i['flagged']} | {pct(i['precision'])} | "
            f"{pct(i['recall'])} | median alert time - drop time: "
            f"{num(i['delay_days_median'])} days |"
        ),
        (
            f"| missed-live-sessions alerts vs drop-outs | {s['flagged']} | "
            f"{pct(s['precision'])} | {pct(s['recall'])} | median alert time - drop time: "
            f"{num(s['delay_days_median'])} days |"
        ),
        "",
        (
            "Share of learners with at least one alert, by archetype (false alarms: fast and "
            f"typical learners; {r['false_wheel_fast_typical']} wheel-spinning alerts on "
            "fast/typical learners without a true stall):"
        ),
        "",
        "| archetype | learners | " + " | ".join(KINDS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in KINDS) + " |",
    ]
    for a, row in r["by_archetype"].items():
        lines.append(
            f"| {a} | {row['learners']} | " + " | ".join(pct(row[k]) for k in KINDS) + " |"
        )
    lat = r["latency"]
    lines += [
        "",
        (
            "End-to-end latency, statement accepted by ingest -> `opened` record on "
            "`alerts.events` (wall time, under the run's full load):"
        ),
        "",
        "| alerts measured | p50 | p95 | max |",
        "| ---: | ---: | ---: | ---: |",
        (
            f"| {lat['n']} | {num(lat['p50_s'], '.2f')} s | {num(lat['p95_s'], '.2f')} s | "
            f"{num(lat['max_s'], '.2f')} s |"
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=600, help="longest drain wait, s")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after the drain, s")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (tests)")
    args = parser.parse_args()
    if args.smoke:
        args.learners, args.days, args.settle = 20, 5, 2.0
    result = asyncio.run(run(args))
    command = ".venv/bin/python bench/bench_alert_quality.py " + " ".join(sys.argv[1:])
    print(markdown(result, command.strip()))
    print(orjson.dumps(result, default=str).decode())


if __name__ == "__main__":
    main()
