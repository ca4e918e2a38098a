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
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from e2e_sustained_measure import STAGES, Hooks, Sent, cpu_now, stage_counts
from e2e_sustained_report import summarise

from tools.demo.pipeline import Pipeline
from tools.simulator.emit import XAPI_VERSION_HEADER, encode_batch
from tools.simulator.simulate import Event


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
