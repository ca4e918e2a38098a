"""PostgreSQL server CPU of archiving statements with pglz (the default) or lz4 TOAST compression.

    .venv/bin/python bench/bench_pg_compression.py [--statements 20000] [--rounds 3]

Why: a typical statement (1.5-2 KB of JSON) makes an archive row and an outbox row longer
than PostgreSQL's TOAST threshold (about 2 KB), so each insert compresses the body and the
envelope. The services' migrations ask for lz4 on those columns (``services/*/migrations``,
``*_lz4_compression.sql``). This script measures what that choice saves on the server.

Two pairs of tables shaped like ingest's archive and outbox (the indexes of
``services/ingest/migrations``), one pair per compression method, get the same rows:
classroom simulator statements completed as ingest archives them (``handlers.prepare``: id,
stored, authority, version, timestamp) as the jsonb body, and ingest's event envelope of each
as the outbox envelope, 50 statements per transaction as ingest writes them. Methods alternate
for ``--rounds`` rounds so the machine's noise hits both alike. The
figure is the CPU time of the server process serving the connection (``/proc/<pid>/stat`` of
``pg_backend_pid()``: the server must run on this machine, as ``make infra-up`` starts it), per
1,000 statements; the tables' sizes show what each method stores. Needs a server built with
lz4 (Debian's and PGDG's are).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_harness import simulated_statements

from services.ingest.handlers import authority_for, prepare
from shared.xapi import XapiVersion, parse_statement

METHODS = ("pglz", "lz4")
BATCH = 50

_DDL = """
CREATE TABLE "{schema}".statements_{method} (
    tenant text NOT NULL, statement_id uuid NOT NULL, body jsonb COMPRESSION {method} NOT NULL,
    content_hash text NOT NULL, learner_key text NOT NULL, verb_id text NOT NULL,
    event_id uuid NOT NULL, channel text NOT NULL, stored timestamptz NOT NULL,
    voided boolean NOT NULL DEFAULT false, PRIMARY KEY (tenant, statement_id));
CREATE INDEX ON "{schema}".statements_{method} (tenant, learner_key, stored);
CREATE INDEX ON "{schema}".statements_{method} (tenant, stored DESC, statement_id DESC);
CREATE TABLE "{schema}".outbox_{method} (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE, tenant text NOT NULL,
    msg_key bytea NOT NULL, envelope bytea COMPRESSION {method} NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(), published_at timestamptz);
CREATE INDEX ON "{schema}".outbox_{method} (id) WHERE published_at IS NULL;
"""

_INSERT = """
WITH ins AS (
    INSERT INTO "{schema}".statements_{method}
        (tenant, statement_id, body, content_hash, learner_key, verb_id, event_id, channel, stored)
    SELECT 'acme', u.sid, u.body, 'hash', 'learner', 'verb', u.eid, 'http', now()
    FROM unnest($1::uuid[], $2::jsonb[], $3::uuid[]) AS u(sid, body, eid)
    RETURNING event_id
)
INSERT INTO "{schema}".outbox_{method} (event_id, tenant, msg_key, envelope)
SELECT u.eid, 'acme', 'acme|learner'::bytea, u.env
FROM unnest($3::uuid[], $4::bytea[]) AS u(eid, env)
WHERE u.eid IN (SELECT event_id FROM ins)
"""


def local_process(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def archived(raw: list[bytes]) -> tuple[list[str], list[bytes]]:
    """The archive bodies (JSON text) and outbox envelopes ingest makes of ``raw``."""
    stored = datetime.now(UTC)
    prepared = [
        prepare(
            parse_statement(r, version=XapiVersion.V1_0_3),
            tenant="acme",
            version=XapiVersion.V1_0_3,
            stored=stored,
            authority=authority_for("acme", "lms"),
            salt="bench-salt",
        )
        for r in raw
    ]
    return [p.body for p in prepared], [p.envelope for p in prepared]


async def run(dsn: str, raw: list[bytes], rounds: int) -> dict[str, object]:
    schema = f"bench_toast_{uuid.uuid4().hex[:8]}"
    bodies, envelopes = archived(raw)
    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        if not local_process(pid):
            raise SystemExit("the PostgreSQL server is not on this machine (make infra-up)")
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        for method in METHODS:
            await conn.execute(_DDL.format(schema=schema, method=method))
        cpu: dict[str, list[float]] = {m: [] for m in METHODS}
        wall: dict[str, list[float]] = {m: [] for m in METHODS}
        for _ in range(rounds):
            for method in METHODS:
                await conn.execute(
                    f'TRUNCATE "{schema}".statements_{method}, "{schema}".outbox_{method}'
                )
                sql = _INSERT.format(schema=schema, method=method)
                before, started = server_cpu_seconds(pid), time.perf_counter()
                for i in range(0, len(bodies), BATCH):
                    chunk = slice(i, i + BATCH)
                    n = len(bodies[chunk])
                    async with conn.transaction():
                        await conn.execute(
                            sql,
                            [uuid.uuid4() for _ in range(n)],
                            bodies[chunk],
                            [uuid.uuid4() for _ in range(n)],
                            envelopes[chunk],
                        )
                wall[method].append(time.perf_counter() - started)
                cpu[method].append(server_cpu_seconds(pid) - before)
        sizes = {
            m: await conn.fetchval(
                "SELECT pg_total_relation_size($1::regclass)"
                " + pg_total_relation_size($2::regclass)",
                f'"{schema}".statements_{m}',
                f'"{schema}".outbox_{m}',
            )
            for m in METHODS
        }
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
    per_1k = 1000 / len(bodies)
    return {
        "statements": len(bodies),
        "mean_body_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "mean_envelope_bytes": round(sum(map(len, envelopes)) / len(envelopes)),
        "rounds": rounds,
        "server_cpu_s_per_1k": {m: [round(c * per_1k, 4) for c in cpu[m]] for m in METHODS},
        "best_server_cpu_s_per_1k": {m: round(min(cpu[m]) * per_1k, 4) for m in METHODS},
        "best_wall_s": {m: round(min(wall[m]), 3) for m in METHODS},
        "table_mib": {m: round(sizes[m] / 2**20, 1) for m in METHODS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres")
    statements = simulated_statements(args.statements)
    result = asyncio.run(run(dsn, statements, args.rounds))
    best = result["best_server_cpu_s_per_1k"]
    assert isinstance(best, dict)
    print(
        f"statements: {result['statements']:,} (mean body {result['mean_body_bytes']:,} bytes, "
        f"envelope {result['mean_envelope_bytes']:,}), "
        f"{BATCH} per transaction, {result['rounds']} rounds, methods alternating"
    )
    print("method  server CPU-s per 1k (best; every round)        best wall s   tables MiB")
    for m in METHODS:
        rounds = ", ".join(f"{c:.3f}" for c in result["server_cpu_s_per_1k"][m])  # type: ignore[index]
        print(
            f"{m:<6}  {best[m]:.3f}  ({rounds}){'':<14}"
            f"{result['best_wall_s'][m]:>8.2f}   {result['table_mib'][m]:>8.1f}"  # type: ignore[index]
        )
    print(f"lz4 / pglz server CPU: {best['lz4'] / best['pglz']:.2f}")
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
