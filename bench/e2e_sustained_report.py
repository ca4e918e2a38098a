"""The figures of a sustained-rate run (``e2e_sustained.py``) and their markdown: latency per
delivered webhook, each stage's backlog, CPU per 1,000 statements."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import orjson
from e2e_sustained_measure import STAGES, Hooks, Sent, backlogs

from tools.demo.feed import percentile


def summarise(
    rate: float,
    n: int,
    sent: Sent,
    hooks: Hooks,
    samples: list[tuple[float, float, dict[str, float]]],
    end_counts: dict[str, float],
    drained: dict[str, float],
) -> dict[str, Any]:
    latencies: list[float] = []
    actions: dict[str, int] = {}
    unmatched = 0
    for at, body in hooks.received:
        payload = orjson.loads(body).get("payload", {})
        action = str(payload.get("action"))
        actions[action] = actions.get(action, 0) + 1
        if action not in ("opened", "updated"):
            continue
        cause = payload.get("cause_statement_id")
        if cause in sent.accepted_at:
            latencies.append(at - sent.accepted_at[cause])
        else:
            unmatched += 1
    seconds = sent.ended - sent.began
    during = [s for s in samples if s[0] <= sent.ended]
    most = dict.fromkeys(STAGES, 0.0)
    for _, accepted, counts in during:
        for stage, backlog in backlogs(counts, accepted).items():
            most[stage] = max(most[stage], backlog)
    at_end = backlogs(end_counts, float(n))
    ingest_lag = percentile(sent.lag, 99)
    stages: dict[str, Any] = {
        "accepted": {
            "lag_p99_s": ingest_lag,
            "lag_max_s": max(sent.lag, default=float("nan")),
            "kept_up": ingest_lag <= 1.0,
        }
    }
    for stage in STAGES:
        stages[stage] = {
            "backlog_max": most[stage],
            "backlog_at_end": at_end[stage],
            "drained_after_s": drained.get(stage),
            "kept_up": at_end[stage] <= rate and stage in drained,
        }
    return {
        "rate": rate,
        "statements": n,
        "seconds": seconds,
        "achieved_per_s": n / seconds,
        "requests": sent.requests,
        "stages": stages,
        "webhooks": len(hooks.received),
        "cpu_s_per_1k": {k: v / n * 1000 for k, v in sent.cpu.items()},
        "cores": os.cpu_count(),
        "actions": actions,
        "latency": {
            "n": len(latencies),
            "unmatched": unmatched,
            "p50_s": percentile(latencies, 50),
            "p95_s": percentile(latencies, 95),
            "p99_s": percentile(latencies, 99),
            "max_s": max(latencies, default=float("nan")),
        },
    }


def markdown(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        (
            "Sustained rate: statements POSTed at a steady rate; latency from the POST carrying "
            "the statement answered to the webhook it caused received (`opened`/`updated`), per "
            "delivered webhook. A stage kept up if its backlog when sending ended was at most one "
            "second of input (ingest: POSTs answered within 1 s of the statements being due)."
        ),
        "",
        (
            "| target /s | achieved /s | statements | webhooks timed | p50 | p95 | p99 | max | "
            "kept up | backlog at end (published / projected / alerts) |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in runs:
        lat, st = r["latency"], r["stages"]
        behind = [s for s in ("accepted", *STAGES) if not st[s]["kept_up"]]
        kept = "all stages" if not behind else "**no**: " + ", ".join(behind)
        ends = " / ".join(f"{st[s]['backlog_at_end']:,.0f}" for s in STAGES)
        lines.append(
            f"| {r['rate']:,.0f} | {r['achieved_per_s']:,.0f} | {r['statements']:,} | "
            f"{lat['n']:,} | {lat['p50_s']:.3f} s | {lat['p95_s']:.3f} s | "
            f"{lat['p99_s']:.3f} s | {lat['max_s']:.3f} s | {kept} | {ends} |"
        )
    lines += cpu_markdown(runs)
    return lines


CPU_PARTS = ("ingest", "progress", "alerts", "postgres", "kafka", "driver")


def cpu_markdown(runs: Sequence[dict[str, Any]]) -> list[str]:
    """CPU seconds per 1,000 statements by component, and the rate the machine's cores could
    carry at that cost (cores / total): above it, something must fall behind."""
    timed = [r for r in runs if r.get("cpu_s_per_1k")]
    if not timed:
        return []
    lines = [
        "",
        (
            "CPU seconds per 1,000 statements, from the first POST until every stage drained "
            "(PostgreSQL and Kafka: the whole servers); *carried at most*: the machine's cores "
            "divided by the total, the highest rate this machine could sustain at that cost."
        ),
        "",
        "| target /s | " + " | ".join(CPU_PARTS) + " | total | cores | carried at most /s |",
        "| ---: | " + " | ".join("---:" for _ in CPU_PARTS) + " | ---: | ---: | ---: |",
    ]
    for r in timed:
        cpu = r["cpu_s_per_1k"]
        total = sum(cpu.get(p, 0.0) for p in CPU_PARTS)
        cores = r.get("cores") or 1
        ceiling = f"{cores / total * 1000:,.0f}" if total > 0 else "-"
        lines.append(
            f"| {r['rate']:,.0f} | "
            + " | ".join(f"{cpu.get(p, float('nan')):.2f}" for p in CPU_PARTS)
            + f" | {total:.2f} | {cores} | {ceiling} |"
        )
    return lines
