"""Throughput of one progress worker (table updates + PostgreSQL projection) next to a raw
aiokafka consume loop over the same topic in the same run; and memory per learner x competency.

Usage: .venv/bin/python bench/bench_progress_throughput.py [--events N] [--learners L]
       [--competencies C] [--partitions P]

Needs the local Kafka and PostgreSQL (``make infra-up``; or KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL). Everything is created under a random topic prefix and schema and removed after.

* raw: a group-less ``AIOKafkaConsumer`` reads all N records (getmany, no decoding).
* faust floor: a Faust agent configured as the worker's (same app settings, manual
  acknowledgement) that only acknowledges each event: what any one-event-at-a-time Faust
  agent costs before doing any work (``--no-floor`` skips it).
* worker: ``open_progress`` (the service as deployed: Faust agent, changelog-backed table,
  updates published, projection with watermarks), timed from the first projected batch to the
  last offset projected (start-up and rebalance excluded, reported apart); also the CPU time
  of the process per 1,000 events over that window (steadier than the wall clock on a shared
  machine).
* every measurement runs on the event loop the services use (uvloop unless
  ``SKILLSTREAM_EVENT_LOOP`` or ``--event-loop`` says otherwise) and with the garbage-collector
  settings they use (``shared.service.tune_gc``, applied again once the worker is ready, as its
  ``run`` does).
* memory: tracemalloc over a dict of sample learner entries (encoded as in the table), each with
  C competencies and a full ring of recent ids, extrapolated to 100,000 learners x 20.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import asyncpg
import orjson
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.progress import repository as repo
from services.progress.app import migrate, open_progress
from services.progress.config import ProgressSettings
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.state import LearnerRecord, encode
from shared import watermarks
from shared.db import create_pool
from shared.envelope import STATEMENT_V1, Envelope
from shared.framework import Framework
from shared.identity import learner_key
from shared.kafka import Topics, ensure_topics, kafka_admin, kafka_consumer, kafka_producer
from shared.service import tune_gc
from shared.settings import EventLoop
from shared.streaming import make_faust_app, raw_topic, running

TENANT = "bench"
SALT = "bench-salt-0000"
ACT = "https://lms.example.com/activities/q"
T0 = datetime(2026, 2, 2, tzinfo=UTC)


def bench_framework(competencies: int) -> Framework:
    return Framework.model_validate(
        {
            "tenant": TENANT,
            "framework": "bench",
            "version": 1,
            "effective_from": "2026-01-01T00:00:00Z",
            "competencies": [{"id": f"c{i}", "name": f"C{i}"} for i in range(competencies)],
            "mappings": [
                {"match": {"activity_id": f"{ACT}{i}"}, "competency": f"c{i}"}
                for i in range(competencies)
            ],
        }
    )


def envelopes(n: int, learners: int, competencies: int) -> list[tuple[bytes, bytes]]:
    keys = [learner_key("account", f"https://lms.example.com|u{i}", SALT) for i in range(learners)]
    out = []
    for i in range(n):
        lk = keys[i % learners]
        at = T0 + timedelta(seconds=i)
        sid = uuid.UUID(int=i + 1, version=4)
        statement = {
            "id": str(sid),
            "actor": {"objectType": "Agent", "learner_key": lk},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
            "object": {"objectType": "Activity", "id": f"{ACT}{i % competencies}"},
            "result": {"success": i % 3 != 0, "duration": "PT20S"},
            "timestamp": at.isoformat(),
            "stored": at.isoformat(),
        }
        env = Envelope.new(
            STATEMENT_V1,
            tenant=TENANT,
            learner_key=lk,
            occurred_at=at,
            recorded_at=at,
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, str(sid)),
            payload={"statement": statement},
        )
        out.append((env.key, env.to_bytes()))
    return out


async def raw_rate(bootstrap: str, topic: str, n: int) -> float:
    async with kafka_consumer(
        bootstrap, topic, group_id=None, max_partition_fetch_bytes=4 << 20
    ) as c:
        seen = 0
        started = time.perf_counter()
        while seen < n:
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(v) for v in batch.values())
        return n / (time.perf_counter() - started)


async def faust_floor(bootstrap: str, topics: Topics, n: int) -> tuple[float, float]:
    """Events/s and CPU seconds per 1,000 events of a Faust agent that only acknowledges
    (timed from its first event, as the worker is from its first projected batch)."""
    app = make_faust_app(
        "floor", bootstrap=bootstrap, topic_prefix=topics.prefix, partitions=topics.partitions
    )
    source = raw_topic(app, topics.statements, topics.partitions)
    done = asyncio.Event()
    seen = [0]
    first = [0.0, 0.0]  # wall, cpu

    async def process(stream: Any) -> None:
        manual = stream.noack()
        async for event in manual.events():
            if not seen[0]:
                first[:] = [time.perf_counter(), time.process_time()]
            seen[0] += 1
            await manual.ack(event)
            if seen[0] >= n:
                done.set()

    app.agent(source, name="floor")(process)
    async with running(app):
        await done.wait()
        wall, cpu = time.perf_counter() - first[0], time.process_time() - first[1]
    return (n - 1) / max(wall, 1e-9), cpu / max(n - 1, 1) * 1000


async def worker_rate(settings: ProgressSettings, topic: str, n: int) -> tuple[float, float, float]:
    """Events/s, start-up seconds, and CPU seconds of this process per 1,000 events (all its
    threads, over the same window: on a shared machine the wall clock also counts other
    processes' turns, the CPU time does not)."""
    started = time.perf_counter()
    async with open_progress(settings) as progress:
        ready = time.perf_counter() - started
        tune_gc()  # as the service's ``run`` does once it is ready
        first_t, first_n, first_cpu = None, 0, 0.0
        while True:
            async with progress.pool.acquire() as conn:
                marks = await watermarks.read(conn, topic)
            done = sum(o + 1 for o in marks.values())
            now = time.perf_counter()
            if done and first_t is None:
                first_t, first_n, first_cpu = now, done, time.process_time()
            if done >= n:
                assert first_t is not None
                cpu = (time.process_time() - first_cpu) / max(n - first_n, 1) * 1000
                return (n - first_n) / max(now - first_t, 1e-9), ready, cpu
            await asyncio.sleep(0.05)


def memory(competencies: int, sample: int, recent: int) -> dict[str, float]:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([bench_framework(competencies)])
    proc = Processor(registry, recent)
    # one learner touched every competency and filled its ring: the largest entry
    record = LearnerRecord()
    for _, raw in envelopes(max(competencies, recent), 1, competencies):
        record = proc.process(Envelope.model_validate_json(raw), record).record
    value = encode(record)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # bytearray -> bytes: a real copy per entry (bytes(value) would share one object)
    table = {f"{TENANT}|{i:032x}".encode(): bytes(bytearray(value)) for i in range(sample)}
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_learner = (after - before) / len(table)
    return {
        "value_bytes": len(value),
        "per_learner_bytes": per_learner,
        "per_learner_competency_bytes": per_learner / competencies,
        "estimate_100k_x_20_MiB": per_learner / competencies * 20 * 100_000 / 2**20,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--learners", type=int, default=2_000)
    parser.add_argument("--competencies", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--no-floor", action="store_true", help="skip the Faust no-op agent")
    parser.add_argument(
        "--event-loop",
        choices=get_args(EventLoop),
        default=os.environ.get("SKILLSTREAM_EVENT_LOOP", "uvloop"),
        help="event loop of every measurement (default: the services' own, "
        "SKILLSTREAM_EVENT_LOOP or uvloop)",
    )
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres")
    run_id = secrets.token_hex(4)
    prefix, schema = f"bench{run_id}.", f"bench_{run_id}"
    settings = ProgressSettings(
        kafka_bootstrap_servers=bootstrap,
        database_url=SecretStr(dsn),
        topic_prefix=prefix,
        db_schema=schema,
        partitions=args.partitions,
        learner_key_salt=SecretStr(SALT),
        app_id="progress",
        log_level="WARNING",
    )
    topics = Topics(prefix, args.partitions)
    results: dict[str, Any] = {
        "events": args.events,
        "learners": args.learners,
        "event_loop": args.event_loop,
    }
    try:
        async with kafka_admin(bootstrap) as admin:
            await ensure_topics(admin, topics.specs())
        data = envelopes(args.events, args.learners, args.competencies)
        async with kafka_producer(bootstrap, linger_ms=20) as producer:
            for key, value in data:
                await producer.send(topics.statements, value, key=key)
            await producer.flush()
        async with create_pool(dsn, schema) as pool:
            await migrate(pool, schema)
            async with pool.acquire() as conn:
                await repo.store_framework(conn, bench_framework(args.competencies), SALT)
        tune_gc()  # every measurement under the services' collector settings
        results["raw_events_per_s"] = round(
            await raw_rate(bootstrap, topics.statements, args.events)
        )
        if not args.no_floor:
            floor, floor_cpu = await faust_floor(bootstrap, topics, args.events)
            results["faust_noop_events_per_s"] = round(floor)
            results["faust_noop_cpu_s_per_1k_events"] = round(floor_cpu, 3)
        rate, ready, cpu = await worker_rate(settings, topics.statements, args.events)
        results["worker_events_per_s"] = round(rate)
        results["worker_cpu_s_per_1k_events"] = round(cpu, 3)
        results["worker_start_s"] = round(ready, 2)
        results["worker_vs_raw"] = round(rate / results["raw_events_per_s"], 3)
        results["memory"] = memory(args.competencies, 1000, settings.recent_ids)
    finally:
        async with kafka_admin(bootstrap) as admin:
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
        cleanup = await asyncpg.connect(dsn)
        try:
            await cleanup.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await cleanup.close()
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    arguments = parse_args()
    factory = None  # asyncio's own loop
    if arguments.event_loop == "uvloop":  # what the service runs on (``run_until_stopped``)
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(arguments))
