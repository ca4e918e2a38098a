"""Ingest throughput: statements/s accepted, archived AND published by one ingest process.

    .venv/bin/python bench/bench_ingest.py [--single 3000] [--batched 20000] [--kafka 20000]
                                           [--ralph-python PATH | --no-ralph] [--smoke]

Needs the local servers (``make infra-up``). One ``python -m services.ingest`` process is started
on a free port in a schema and topic prefix of its own; the load comes from this process. A
statement counts only once its outbox row is marked published (Kafka acknowledged it), so the
figures include the PostgreSQL archive and the publish, as the issue asks.

Runs, in one go so the machine's noise hits them alike:

* HTTP, one statement per POST, 16 requests in flight;
* HTTP, batches of 100 statements per POST, 4 in flight;
* Kafka raw-topic intake: the statements are produced first, then ingest reads them; timed
  from ingest's start (so including the consumer group join), and again in steady state, from
  the first statement stored to the last one published (table only);
* baseline: a plain aiokafka producer sending the same statement bytes to the same broker
  (the ceiling for anything that publishes them one ``send`` at a time), once with aiokafka's
  default 16 KiB batches and once with ingest's producer settings (512 KiB batches); ingest's
  outbox relay itself uses the producer's batch API;
* baseline: plain asyncpg writing the same statements, in batches of 100 (one transaction each,
  4 connections), to tables shaped like ingest's archive and outbox (bodies as jsonb, the bytes
  again as the outbox payload): the floor of what storing them costs on this PostgreSQL, without
  validation, HTTP or Kafka. It is printed in the table, not in the JSON line the smoke test
  reads;
* the CPU floor: what the parts every ingest process runs for every statement cost in this
  process, on the same statements -- strict validation (``parse_statement``, best of three
  passes), the producer's ``send`` with ingest's settings (the 512 KiB baseline's CPU) and the
  consumer's ``getmany`` of those records -- and the rate one core allows at their sum (HTTP:
  validation and producer; Kafka intake: the three). Nothing ingest adds (HTTP, archive,
  envelope, outbox) is counted, so no ingest process built on aiokafka can beat that rate on
  this machine (a client whose work runs in threads outside the GIL, as librdkafka's does,
  would move the producer's and consumer's parts off the core that validates);
* baseline: Ralph's LRS (PyPI ``ralph-malph`` 5.1.0, FastAPI) in a virtualenv of its own
  (``make ralph-venv``; ``--ralph-python PATH``), on the same statement bytes as the two HTTP
  runs with the same clients (one per POST, 16 in flight; then batches of 100, 4 in flight).
  One Ralph process per backend (uvicorn, one worker, no access log, log level warning), HTTP
  Basic credentials made with ``ralph auth``; backends: Ralph's filesystem backend appending
  to its file, and the same backend storing nothing (``bench/ralph_lrs.py`` says exactly what
  was changed and why). A statement counts once Ralph answered 200; the HTTP answers are
  counted, and the file's lines afterwards. Without the venv the rows say "not run" and how to
  make it; ``--smoke`` leaves Ralph out unless ``--ralph-python`` is given.

Per run, the server process's (ingest's, Ralph's) CPU seconds per 1,000 statements (``/proc``,
Linux) are printed too: steadier than the rates on a shared, noisy machine (for the Kafka run
they cover the process's whole life, start-up included; its steady-state row, the life after
the process answered ready).

The statements come from the classroom simulator (realistic LMS statements, unique ids).
``--smoke`` runs tiny counts so the test suite can prove the script still works.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Final

import orjson

from services.ingest.config import IngestSettings
from shared.kafka import Topics, TopicSpec, ensure_topics, kafka_admin, kafka_producer
from shared.xapi import XapiVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_baselines import Floor, bench_raw_insert, bench_raw_producer, cpu_floor
from ingest_harness import (
    IngestProcess,
    bench_http,
    bench_schema,
    kafka_steady_state,
    simulated_statements,
    wait_published,
)
from ralph_lrs import bench_ralph, resolve_python
from throughput import Result, free_port

TENANT = "acme"
_DEFAULTS = IngestSettings.model_fields
#: what ingest runs with by default: its producer's batch size, raw records' xAPI version
INGESTS: Final = {
    "batch_bytes": _DEFAULTS["producer_batch_bytes"].default,
    "version": XapiVersion(_DEFAULTS["raw_default_version"].default),
}


async def baselines(
    bootstrap: str, topic: str, raw: list[bytes], dsn: str, schema: str
) -> tuple[Result, list[Result], Floor]:
    """The raw producer's row (the table's 100%), the other baselines' rows and the CPU floor.
    The table's CPU column is the server's: the producers' own CPU is in the floor."""
    producer = await bench_raw_producer(bootstrap, topic, raw)
    # the same sends with ingest's producer settings, then what each part costs
    floor, produced = await cpu_floor(bootstrap, topic, raw, **INGESTS)
    stored = await bench_raw_insert(dsn, f"{schema}_base", raw)
    return replace(producer, cpu=None), [replace(produced, cpu=None), stored], floor


async def run(
    args: argparse.Namespace,
) -> tuple[list[Result], list[Result], list[Result], Floor]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres")
    run_id = secrets.token_hex(3)
    schema, prefix, port = f"bench_{run_id}", f"bench{run_id}.", free_port()
    topics = Topics(prefix, 4)
    total = args.single + args.batched + args.kafka
    statements = simulated_statements(total + args.kafka)
    single = statements[: args.single]
    batched = statements[args.single : args.single + args.batched]
    raw = statements[args.single + args.batched : total]
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL=dsn,
        SKILLSTREAM_TOPIC_PREFIX=prefix,
        INGEST_DB_SCHEMA=schema,
        INGEST_HTTP_PORT=str(port),
        INGEST_INTAKE_ENABLED="true",
        INGEST_DB_POOL_MAX="20",
        SKILLSTREAM_LOG_LEVEL="WARNING",
        SKILLSTREAM_LEARNER_KEY_SALT="bench-salt-123",
    )
    base = f"http://127.0.0.1:{port}"
    results: list[Result] = []
    extra: list[Result] = []  # baselines printed but kept out of the JSON line
    async with kafka_admin(bootstrap) as admin:
        await ensure_topics(
            admin,
            [*topics.specs(), TopicSpec(topics.raw(TENANT), 4), TopicSpec(f"{prefix}base", 4)],
        )
    ingest = IngestProcess(env)
    async with bench_schema(dsn, schema) as pool:
        try:
            out = ingest.cli("credentials", "create", "--tenant", TENANT, "--name", "bench")
            user = out.split("username:")[1].split()[0]
            secret = out.split("secret:")[1].split()[0]
            auth = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            # baselines first, on a quiet broker and database
            base_row, more, floor = await baselines(bootstrap, f"{prefix}base", raw, dsn, schema)
            results.append(base_row)
            extra += more
            ralph = await bench_ralph(args.ralph_python, args.ralph_reason, single, batched)
            await ingest.start(base)
            results.append(await bench_http(ingest, base, auth, pool, schema, single, 1, 16, 0))
            results.append(
                await bench_http(ingest, base, auth, pool, schema, batched, 100, 4, args.single)
            )
            ingest.stop()
            # Kafka intake: records wait on the raw topic, then ingest starts and drains them
            async with kafka_producer(bootstrap) as producer:
                futures = [await producer.send(topics.raw(TENANT), s) for s in raw]
                await asyncio.gather(*futures)
            started = time.monotonic()
            await ingest.start(base)
            at_ready = ingest.cpu_seconds()  # start-up: imports, migrations, clients
            done = await wait_published(pool, schema, total, 600)
            used = ingest.cpu_seconds()
            results.append(
                Result(
                    "Kafka raw-topic intake (incl. start-up)",
                    len(raw),
                    done - started,
                    used,  # the whole process life: start-up included
                )
            )
            steady = await kafka_steady_state(pool, schema, len(raw))
            if used is not None and at_ready is not None:
                steady.cpu = used - at_ready
            extra.append(steady)
        finally:
            ingest.stop()
            async with kafka_admin(bootstrap) as admin:
                names = [t for t in await admin.list_topics() if t.startswith(prefix)]
                await admin.delete_topics(names)
    return results, extra, ralph, floor


def print_floor(floor: Floor) -> None:
    rows = [
        ("strict validation (`shared.xapi.parse_statement`, xAPI 2.0)", floor.validation_us),
        ("aiokafka producer `send`, ingest's settings (the 512 KiB row above)", floor.produce_us),
        ("aiokafka consumer `getmany` of those records", floor.consume_us),
        ("**HTTP floor**: validation + producer", floor.http_us),
        ("**Kafka intake floor**: validation + producer + consumer", floor.kafka_us),
    ]
    print(
        "\nCPU floor: what every statement costs an ingest process built on aiokafka, "
        "whatever its own code (measured in this bench process, same statements; no HTTP, "
        "archive, envelope or outbox counted), and the most one process could take on one core "
        "at that cost alone:\n"
    )
    print("| part | CPU µs per statement | at most statements/s on one core |")
    print("| --- | ---: | ---: |")
    for name, us in rows:
        print(f"| {name} | {us:.1f} | {1e6 / us:,.0f} |")


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("needs at least 1 statement")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=_count, default=3000, help="statements posted one by one")
    parser.add_argument("--batched", type=_count, default=20000, help="statements posted by 100")
    parser.add_argument("--kafka", type=_count, default=20000, help="statements via the raw topic")
    parser.add_argument("--smoke", action="store_true", help="tiny counts (tests)")
    parser.add_argument(
        "--ralph-python",
        help="the Ralph venv's interpreter (default: .local/ralph-venv's, made by "
        "`make ralph-venv`; a --smoke run leaves Ralph out unless this is given)",
    )
    parser.add_argument("--no-ralph", action="store_true", help="leave Ralph's rows out")
    args = parser.parse_args()
    if args.smoke:
        args.single, args.batched, args.kafka = 20, 200, 200
    args.ralph_python, args.ralph_reason = resolve_python(
        args.ralph_python, disabled=args.no_ralph, smoke=args.smoke
    )
    results, extra, ralph, floor = asyncio.run(run(args))
    baseline = results[0].rate
    print(
        f"# ingest throughput, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.node()} ({os.cpu_count()} cores)"
    )
    print("| run | statements | seconds | statements/s | vs raw producer | server CPU-s per 1k |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in [results[0], *extra[:2], *results[1:], *extra[2:], *ralph]:
        if r.note:
            print(f"| {r.name} | {r.statements} | {r.note} | | | |")
            continue
        print(
            f"| {r.name} | {r.statements} | {r.seconds:.2f} | {r.rate:,.0f} | "
            f"{r.rate / baseline:.1%} | {r.cpu_per_1k} |"
        )
    checked = [r for r in ralph if r.checks]
    if checked:
        print("\nRalph's runs, checked:\n")
        print("\n".join(f"- {r.name}: {r.checks}." for r in checked))
    print_floor(floor)
    measured = [*results, *(r for r in ralph if not r.note)]
    print(orjson.dumps({r.name: round(r.rate, 1) for r in measured}).decode())


if __name__ == "__main__":
    main()
