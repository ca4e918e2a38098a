"""What ``bench_soak.py`` measures while the pipeline runs: the samples (consumer lag from the
broker, each service's resident memory) and the count of statements each stage passed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from shared.kafka import Topics, kafka_admin, kafka_consumer
from shared.lag import group_lag
from tools.demo.metrics import parse_metrics, read_metrics
from tools.demo.pipeline import Pipeline

# Faust consumer groups (after the topic prefix) and the topic each consumes
GROUPS = {
    "progress": ("skillstream-progress", "statements"),
    "alerts": ("skillstream-alerts", "progress_updates"),
}
MIB = 2**20


@dataclass
class Sample:
    t: float  # seconds since the first POST
    feeding: bool
    accepted: float
    lag: dict[str, int]  # service -> records not committed
    rss: dict[str, float]  # service -> MiB


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MIB
    return float("nan")


async def sampler(
    pipeline: Pipeline,
    http: aiohttp.ClientSession,
    soak: Soak,
    began: float,
    every: float,
    feeding: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    topics = Topics(pipeline.prefix)
    async with (
        kafka_admin(pipeline.bootstrap) as admin,
        kafka_consumer(pipeline.bootstrap, group_id=None) as consumer,
    ):
        partitions: dict[str, list[tuple[str, int]]] = {}
        for service, (_, attr) in GROUPS.items():
            topic = getattr(topics, attr)
            (described,) = await admin.describe_topics([topic])
            partitions[service] = sorted((topic, p["partition"]) for p in described["partitions"])
            if not partitions[service]:
                raise SystemExit(f"no partitions found for {topic}: lag cannot be measured")
        while not stop.is_set():
            lag = {
                service: sum(
                    (
                        await group_lag(
                            admin, consumer, pipeline.prefix + group, partitions[service]
                        )
                    ).values()
                )
                for service, (group, _) in GROUPS.items()
            }
            pages = await pipeline.metric_pages(http)
            soak.samples.append(
                Sample(
                    t=time.monotonic() - began,
                    feeding=feeding.is_set(),
                    accepted=read_metrics(pages).accepted,
                    lag=lag,
                    rss={s: rss_mib(pid) for s, pid in pipeline.pids().items()},
                )
            )
            await asyncio.sleep(every)


async def count_stages(pipeline: Pipeline, http: aiohttp.ClientSession) -> dict[str, float]:
    pages = await pipeline.metric_pages(http)
    m = read_metrics(pages)
    projected = sum(
        v
        for _, v in parse_metrics(pages.get("progress", "")).get(
            "skillstream_progress_projection_batch_size_sum", []
        )
    )
    conn = await asyncpg.connect(pipeline.dsn)
    try:
        archived = await conn.fetchval(
            f'SELECT count(*) FROM "{pipeline.schemas["ingest"]}".statements'
        )
    finally:
        await conn.close()
    return {
        "accepted": m.accepted,
        "archived": float(archived),
        "published": m.published,
        "processed": m.processed,
        "projected": projected,
        "updates published": m.updates,
        "updates applied by alerts": m.alerts_applied,
    }
