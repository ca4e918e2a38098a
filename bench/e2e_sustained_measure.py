"""What ``e2e_sustained.py`` measures: statements sent and when they were answered, webhooks
received, CPU used, and each stage's count and backlog from the services' metrics."""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from tools.demo.metrics import parse_metrics, read_metrics
from tools.demo.pipeline import Pipeline
from tools.demo.processes import cpu_seconds, server_cpu_seconds

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
