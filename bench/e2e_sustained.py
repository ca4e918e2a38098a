"""The sustained-rate mode of ``bench/bench_e2e.py``: statements at a steady rate, latency from
statement accepted to webhook received.

* Load: the simulator's statements in event-time order, statement ``i`` due ``i / rate`` seconds
  after the start. They go out through ``lanes`` per tenant (a learner always in the same lane,
  so each learner's statements stay in order), each lane POSTing every ``tick`` the statements
  that are due (batches of one tenant, at most ``batch`` each), one request in flight per lane.
* Webhooks: a receiver in this process, subscribed through the alerts routing config (a team per
  tenant, a catch-all rule, the receiver's URL as the team's webhook, via the alerts CLI).
* Latency of a delivered webhook (``opened`` or ``updated``): received minus the moment the POST
  carrying the statement that caused it (the event's ``cause_statement_id``) was answered. (Up
  to 2026-11-30 the last of ``evidence.statement_ids`` was taken for the cause; for a gaming
  alert that is the latest suspicious answer, not the statement behind the update, so updates
  were timed from older statements: up to 12 s too long at 300 statements/s.)
* CPU: seconds of CPU per 1,000 statements of each service process, the load driver (this
  process: sending and the webhook receiver), and the PostgreSQL and Kafka servers (whole
  servers: meaningful on an otherwise idle machine), from the first POST until every stage has
  drained; their sum against the machine's cores says which rate it can carry at all.
* Keeping up: the services' counters are sampled during the run; a stage's backlog is what
  passed the stage before it but not this one (statements; progress updates for alerts). A stage
  kept up when its backlog at the end of sending was at most one second of input, and ingest
  when every POST was answered within a second of its statements being due.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tools.demo.feed import percentile
from tools.demo.pipeline import (
    Pipeline,
    cpu_seconds,
    parse_metrics,
    read_metrics,
    server_cpu_seconds,
)
from tools.simulator.emit import XAPI_VERSION_HEADER, encode_batch
from tools.simulator.simulate import Event

STAGES = ("published", "projected", "alerts applied")


@dataclass
class Sent:
    accepted_at: dict[str, float] = field(default_factory=dict)  # statement id -> monotonic
    lag: list[float] = field(default_factory=list)  # per statement: answered - due, seconds
    requests: int = 0
    began: float = 0.0
    ended: float = 0.0
    #: CPU seconds per component from the first POST to the end of draining
    cpu: dict[str, float] = field(default_factory=dict)


def cpu_now(pipeline: Pipeline) -> dict[str, float]:
    """CPU seconds used so far by each service, the load driver and the two servers."""
    used = {name: cpu_seconds(pid) for name, pid in pipeline.pids().items()}
    out = {name: value for name, value in used.items() if value is not None}
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    out["driver"] = self_usage.ru_utime + self_usage.ru_stime
    out.update(server_cpu_seconds())
    return out


@dataclass
class Hooks:
    received: list[tuple[float, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), await request.read()))
        return web.Response(status=204)


def lanes_of(events: Sequence[Event], per_tenant: int) -> list[list[tuple[int, Event]]]:
    """(index, event) lists, one per (tenant, learner hash % per_tenant), in index order."""
    lanes: dict[tuple[str, int], list[tuple[int, Event]]] = {}
    for index, event in enumerate(events):
        lane = zlib.crc32(event.learner_ref.encode()) % per_tenant
        lanes.setdefault((event.tenant, lane), []).append((index, event))
    return [lanes[k] for k in sorted(lanes)]


async def send_lane(
    http: aiohttp.ClientSession,
    url: str,
    auth: str,
    lane: list[tuple[int, Event]],
    *,
    start: float,
    rate: float,
    tick: float,
    batch: int,
    sent: Sent,
) -> None:
    headers = {**XAPI_VERSION_HEADER, "Content-Type": "application/json", "Authorization": auth}
    pos = 0
    while pos < len(lane):
        now = time.monotonic()
        first_due = start + lane[pos][0] / rate
        if first_due > now:
            await asyncio.sleep(max(first_due - now, tick))
            continue
        end = pos
        while end < len(lane) and end - pos < batch and start + lane[end][0] / rate <= now:
            end += 1
        chunk = lane[pos:end]
        async with http.post(url, data=encode_batch([e for _, e in chunk]), headers=headers) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"POST answered {r.status}: {body[:500]!r}")
        answered = time.monotonic()
        sent.requests += 1
        for index, event in chunk:
            sent.accepted_at[str(event.statement["id"])] = answered
            sent.lag.append(answered - (start + index / rate))
        pos = end
        if pos < len(lane) and time.monotonic() - now < tick:
            await asyncio.sleep(tick - (time.monotonic() - now))  # let a batch gather


async def subscribe(pipeline: Pipeline, tenants: Sequence[str], url: str) -> None:
    """A support team per tenant, routed every alert, with ``url`` as its webhook."""

    async def one(tenant: str) -> None:
        base = ["--tenant", tenant, "--team", "bench"]
        await pipeline.cli("alerts", "teams", "add", *base, "--name", "Benchmark")
        await pipeline.cli("alerts", "rules", "add", *base, "--priority", "1")
        await pipeline.cli("alerts", "webhooks", "add", *base, "--url", url)

    await asyncio.gather(*(one(t) for t in tenants))


def stage_counts(pages: Mapping[str, str]) -> dict[str, float]:
    m = read_metrics(pages)
    progress = parse_metrics(pages.get("progress", ""))
    alerts = parse_metrics(pages.get("alerts", ""))
    projected = sum(
        v for _, v in progress.get("skillstream_progress_projection_batch_size_sum", [])
    )
    consumed = sum(v for _, v in alerts.get("skillstream_alerts_progress_updates_total", []))
    return {
        "published": m.published,
        "projected": projected,
        "updates": m.updates,
        "alerts applied": consumed,
    }


def backlogs(counts: Mapping[str, float], accepted: float) -> dict[str, float]:
    """Per stage, what passed the stage before it but not this one (the pages are scraped one
    after the other: a stage can be seen slightly ahead of the one before, counted as 0)."""
    return {
        "published": max(0.0, accepted - counts["published"]),
        "projected": max(0.0, counts["published"] - counts["projected"]),
        "alerts applied": max(0.0, counts["updates"] - counts["alerts applied"]),
    }


async def run_sustained(
    pipeline: Pipeline,
    http: aiohttp.ClientSession,
    events: Sequence[Event],
    credentials: Mapping[str, tuple[str, str]],
    *,
    rate: float,
    lanes: int = 2,
    tick: float = 0.05,
    batch: int = 250,
    limit: float = 300.0,
) -> dict[str, Any]:
    """Run one sustained-rate load through a started pipeline (frameworks loaded); the figures."""
    hooks = Hooks()
    receiver = web.Application()
    receiver.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        tenants = sorted({e.tenant for e in events})
        await subscribe(pipeline, tenants, f"http://127.0.0.1:{port}/hook")
        return await _load(
            pipeline, http, events, credentials, hooks,
            rate=rate, lanes=lanes, tick=tick, batch=batch, limit=limit,
        )  # fmt: skip
    finally:
        await runner.cleanup()


async def _load(
    pipeline: Pipeline,
    http: aiohttp.ClientSession,
    events: Sequence[Event],
    credentials: Mapping[str, tuple[str, str]],
    hooks: Hooks,
    *,
    rate: float,
    lanes: int,
    tick: float,
    batch: int,
    limit: float,
) -> dict[str, Any]:
    n = len(events)
    auth = {
        t: "Basic " + base64.b64encode(f"{u}:{s}".encode()).decode()
        for t, (u, s) in credentials.items()
    }
    url = pipeline.url("ingest") + "/xapi/statements"
    sent = Sent()
    samples: list[tuple[float, float, dict[str, float]]] = []  # (t, accepted, counts)
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            counts = stage_counts(await pipeline.metric_pages(http))
            samples.append((time.monotonic(), float(len(sent.accepted_at)), counts))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)

    sampler = asyncio.ensure_future(sample())
    cpu_before = cpu_now(pipeline)
    start = sent.began = time.monotonic() + 0.2
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as post:
            await asyncio.gather(
                *(
                    send_lane(
                        post,
                        url,
                        auth[lane[0][1].tenant],
                        lane,
                        start=start,
                        rate=rate,
                        tick=tick,
                        batch=batch,
                        sent=sent,
                    )
                    for lane in lanes_of(events, lanes)
                )
            )
        sent.ended = time.monotonic()
        end_counts = stage_counts(await pipeline.metric_pages(http))
        drained: dict[str, float] = {}
        deadline = time.monotonic() + limit
        while len(drained) < len(STAGES) and time.monotonic() < deadline:
            counts = stage_counts(await pipeline.metric_pages(http))
            targets = {"published": n, "projected": n, "alerts applied": counts["updates"]}
            for stage in STAGES:
                upstream_done = stage != "alerts applied" or "projected" in drained
                if stage not in drained and upstream_done and counts[stage] >= targets[stage] > 0:
                    drained[stage] = time.monotonic() - sent.ended
            await asyncio.sleep(0.1)
        cpu_after = cpu_now(pipeline)
        sent.cpu = {k: v - cpu_before[k] for k, v in cpu_after.items() if k in cpu_before}
        # webhooks: until none came for 2 s (the delivery worker polls every second at most)
        while time.monotonic() < deadline:
            last = hooks.received[-1][0] if hooks.received else sent.ended
            if time.monotonic() - max(last, sent.ended) > 2.0:
                break
            await asyncio.sleep(0.2)
    finally:
        done.set()
        await sampler
    return summarise(rate, n, sent, hooks, samples, end_counts, drained)


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
