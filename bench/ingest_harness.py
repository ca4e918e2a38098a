"""The ingest process under test and what ``bench_ingest.py`` measures it with.

:class:`IngestProcess` runs ``python -m services.ingest`` (and its CLI) in the benchmark's
environment; :func:`simulated_statements` makes the load with the classroom simulator;
:func:`bench_schema` gives the run's database pool and drops its schema afterwards. The
measurements: :func:`bench_http` (POSTs, timed until the outbox rows are published,
:func:`wait_published`) and :func:`kafka_steady_state` (the Kafka run without start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import asyncpg
from throughput import Result, bodies_of, post_bodies, process_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def simulated_statements(count: int) -> list[bytes]:
    """At least ``count`` distinct simulator statements of tenant ``acme``, as JSON bytes."""
    learners = max(10, count // 200)
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                PYTHON,
                "-m",
                "tools.simulator",
                "--seed",
                "11",
                "--learners",
                str(learners),
                "--days",
                "40",
                "--tenants",
                "1",
                "--out",
                out,
                "--quiet",
            ],
            check=True,
            cwd=ROOT,
        )
        lines = Path(out, "statements.jsonl").read_bytes().splitlines()
    if len(lines) < count:
        raise SystemExit(f"the simulator gave {len(lines)} statements, {count} wanted")
    return lines[:count]


class IngestProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [PYTHON, "-m", "services.ingest.cli", *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    async def start(self, base: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "services.ingest"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            return
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise SystemExit(f"ingest exited: {err[-2000:]}")
                await asyncio.sleep(0.2)
        raise SystemExit("ingest did not become ready in 60 s")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the running ingest process (Linux ``/proc``), else None."""
        return None if self.proc is None else process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


async def published(pool: asyncpg.Pool, schema: str) -> int:
    return int(
        await pool.fetchval(
            f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NOT NULL'
        )
    )


async def wait_published(pool: asyncpg.Pool, schema: str, target: int, limit: float) -> float:
    """Seconds (monotonic clock) at which ``target`` outbox rows were published."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await published(pool, schema) >= target:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise SystemExit(f"only {await published(pool, schema)} of {target} published in {limit} s")


async def post_all(base: str, auth: str, bodies: Sequence[bytes], in_flight: int) -> None:
    headers = {
        "Authorization": auth,
        "X-Experience-API-Version": "2.0.0",
        "Content-Type": "application/json",
    }
    statuses, error = await post_bodies(f"{base}/xapi/statements", headers, bodies, in_flight)
    if error:
        raise SystemExit(f"POST answered {error} (all answers: {dict(statuses)})")


async def bench_http(
    ingest: IngestProcess,
    base: str,
    auth: str,
    pool: asyncpg.Pool,
    schema: str,
    statements: Sequence[bytes],
    batch: int,
    in_flight: int,
    already: int,
) -> Result:
    bodies = bodies_of(statements, batch)
    started, cpu = time.monotonic(), ingest.cpu_seconds()
    await post_all(base, auth, bodies, in_flight)
    done = await wait_published(pool, schema, already + len(statements), 600)
    used = ingest.cpu_seconds()
    name = (
        "HTTP, 1 statement per POST, 16 in flight"
        if batch == 1
        else (f"HTTP, batches of {batch}, {in_flight} in flight")
    )
    return Result(
        name, len(statements), done - started, None if cpu is None or used is None else used - cpu
    )


async def kafka_steady_state(pool: asyncpg.Pool, schema: str, count: int) -> Result:
    """The Kafka run without start-up (consumer group join, first fetch): from the ``stored``
    time of its first archived statement to the publication of its last one, both clocks of
    this machine (PostgreSQL's ``clock_timestamp()`` and ingest's). Its CPU (set by the caller)
    is the process's after it answered ready."""
    seconds = await pool.fetchval(
        f'SELECT extract(epoch FROM (SELECT max(published_at) FROM "{schema}".outbox)'
        f" - (SELECT min(stored) FROM \"{schema}\".statements WHERE channel = 'kafka'))"
    )
    return Result(
        "Kafka raw-topic intake, steady state (first stored to last published)",
        count,
        float(seconds),
    )


@contextlib.asynccontextmanager
async def bench_schema(dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()
