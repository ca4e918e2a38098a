"""``python -m tools.simulator``: simulate an academy and write or stream its statements.

Examples::

    python -m tools.simulator --seed 7 --learners 200 --days 30 --out sim-out
    python -m tools.simulator --sink http --endpoint http://127.0.0.1:8080 \\
        --user '{tenant}.simulator' --password SECRET --speedup 3600
    python -m tools.simulator --sink kafka --bootstrap 127.0.0.1:9092 --rate 200

The files (``statements.jsonl``, ``truth.jsonl``, ``framework.yaml`` and
``frameworks/<tenant>.yaml``) are always written to ``--out``; ``--sink`` adds where the
statements are streamed to.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from shared.kafka import Topics
from tools.simulator.emit import (
    HttpTarget,
    Pace,
    SinkStats,
    create_raw_topics,
    send_http,
    send_jsonl,
    send_kafka,
)
from tools.simulator.output import STATEMENTS, write_files
from tools.simulator.simulate import Config, Event, simulate


def _date(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _credential(text: str) -> tuple[str, tuple[str, str]]:
    tenant, sep, rest = text.partition("=")
    user, sep2, password = rest.partition(":")
    if not (sep and sep2 and tenant and user):
        raise argparse.ArgumentTypeError("expected TENANT=USER:PASSWORD")
    return tenant, (user, password)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m tools.simulator",
        description="Simulate a classroom: xAPI statements, ground truth and framework files.",
    )
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--learners", type=int, default=200, help="number of learners (200)")
    ap.add_argument("--days", type=int, default=30, help="days simulated (30)")
    ap.add_argument("--tenants", type=int, default=2, choices=range(1, 5), help="tenants (2)")
    ap.add_argument("--start", type=_date, default=Config.start, help="first day, UTC (2026-02-02)")
    ap.add_argument("--out", type=Path, default=Path("sim-out"), help="output folder (sim-out)")
    ap.add_argument("--sink", choices=("file", "http", "kafka"), default="file")
    pace = ap.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="statements per second (default: max speed)")
    pace.add_argument(
        "--speedup", type=float, help="event time runs this many times faster than wall time"
    )
    ap.add_argument("--batch-size", type=int, default=100, help="statements per batch (100)")
    ap.add_argument("--endpoint", default="http://127.0.0.1:8080", help="ingest base URL")
    ap.add_argument("--user", default="{tenant}.simulator", help="Basic user; {tenant} is replaced")
    ap.add_argument(
        "--password",
        default=os.environ.get("SIMULATOR_PASSWORD", "simulator"),
        help="Basic password (default $SIMULATOR_PASSWORD or 'simulator')",
    )
    ap.add_argument(
        "--credential",
        type=_credential,
        action="append",
        default=[],
        metavar="TENANT=USER:PASSWORD",
        help="credentials of one tenant (repeatable)",
    )
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )
    ap.add_argument("--topic-prefix", default="", help="prefix of the raw topic names")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of new raw topics")
    ap.add_argument("--quiet", action="store_true", help="print no summary")
    return ap


async def _stream(
    args: argparse.Namespace, sim_events: list[Event], tenants: list[str]
) -> SinkStats:
    pace = Pace(rate=args.rate, speedup=args.speedup)
    if args.sink == "http":
        target = HttpTarget(args.endpoint, args.user, args.password, dict(args.credential))
        return await send_http(sim_events, target, pace, args.batch_size)
    if args.sink == "kafka":
        topics = Topics(prefix=args.topic_prefix)
        await create_raw_topics(args.bootstrap, topics, tenants, args.partitions)
        return await send_kafka(sim_events, args.bootstrap, topics, pace, args.batch_size)
    return await send_jsonl(sim_events, args.out / STATEMENTS, pace, args.batch_size)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    began = time.perf_counter()
    cfg = Config(
        seed=args.seed, learners=args.learners, days=args.days, tenants=args.tenants,
        start=args.start,
    )  # fmt: skip
    sim = simulate(cfg)
    generated = time.perf_counter() - began
    write_files(sim, args.out)
    written = time.perf_counter() - began
    stats = None
    paced = args.rate is not None or args.speedup is not None
    if args.sink != "file" or paced:
        tenants = [t.id for t in sim.academy.tenants]
        try:
            stats = asyncio.run(_stream(args, sim.events, tenants))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    if not args.quiet:
        archetypes = Counter(r["archetype"] for r in sim.learners)
        stalls = sum(1 for _, r in sim.extra_truth if r["kind"] == "stall")
        print(
            f"{len(sim.events)} statements from {len(sim.learners)} learners "
            f"({', '.join(f'{k} {v}' for k, v in sorted(archetypes.items()))}); "
            f"{stalls} stalls; generated in {generated:.2f}s, files in {written - generated:.2f}s "
            f"-> {args.out}",
            file=sys.stderr,
        )
        if stats is not None:
            print(
                f"{args.sink}: {stats.statements} statements in {stats.batches} batches, "
                f"{stats.seconds:.1f}s, {stats.retries} retries",
                file=sys.stderr,
            )
    return 0
