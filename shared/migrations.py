"""A small migration runner: ordered SQL files per schema, each applied once, never destructive.

Files are named ``NNNN_description.sql`` and live in a service's ``migrations`` package
directory. The runner

* takes a transaction-scoped advisory lock per schema, so replicas starting together apply each
  file once;
* records every applied file with its SHA-256 in ``<schema>.schema_migrations``;
* refuses a file that was changed after being applied (write a new file instead);
* refuses destructive statements (``DROP TABLE``/``DROP COLUMN``/``DROP SCHEMA``/``TRUNCATE``/
  ``DELETE FROM`` without ``WHERE``), because schema changes must never lose data.

Each file runs in its own transaction with ``search_path`` set to the schema, so the SQL uses
unqualified names.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import asyncpg

from shared.db import check_schema_name
from shared.errors import MigrationError

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_DESTRUCTIVE = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|SCHEMA|DATABASE)|TRUNCATE|DELETE\s+FROM\s+\S+\s*;)",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"--[^\n]*")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Traversable | Path) -> list[Migration]:
    """Read and check the migration files of ``directory``, in order."""
    found: list[Migration] = []
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if not match:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        sql = entry.read_text(encoding="utf-8")
        bad = _DESTRUCTIVE.search(_COMMENT.sub("", sql))
        if bad:
            raise MigrationError(f"{entry.name}: destructive statement {bad.group(0)!r} refused")
        found.append(Migration(match.group(1), entry.name, sql))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version in {directory}")
    return found


async def apply_migrations(
    conn: asyncpg.Connection[Any], schema: str, directory: Traversable | Path
) -> list[str]:
    """Apply the files of ``directory`` not yet applied to ``schema``; return their names."""
    check_schema_name(schema)
    migrations = load_migrations(directory)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrations:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # schema names are checked against a strict pattern above, so formatting them is safe
        rows = await conn.fetch(
            f'SELECT version, name, checksum FROM "{schema}".schema_migrations'  # noqa: S608
        )
        done = {r["version"]: r for r in rows}
        path = await conn.fetchval("SHOW search_path")
        await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
        for migration in migrations:
            previous = done.get(migration.version)
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} changed after it was applied to {schema}; "
                        "add a new migration file instead"
                    )
                continue
            log.info("applying migration", extra={"schema": schema, "migration": migration.name})
            async with conn.transaction():  # a savepoint: the error names the file
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{migration.name} failed: {exc}") from exc
            await conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, name, checksum)'  # noqa: S608
                " VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied.append(migration.name)
        await conn.execute(f"SET LOCAL search_path TO {path}")
    return applied
