from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.db import create_pool, ping
from shared.errors import MigrationError
from shared.migrations import apply_migrations


def write(tmp_path: Path, name: str, sql: str) -> None:
    (tmp_path / name).write_text(sql, encoding="utf-8")


async def test_a_migration_applied_twice_has_one_effect(
    tmp_path: Path, db_schema: str, db_conn: asyncpg.Connection[Any]
) -> None:
    write(tmp_path, "0001_init.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    write(tmp_path, "0002_seed.sql", "INSERT INTO items VALUES (1);")
    first = await apply_migrations(db_conn, db_schema, tmp_path)
    second = await apply_migrations(db_conn, db_schema, tmp_path)
    assert first == ["0001_init.sql", "0002_seed.sql"]
    assert second == []
    assert await db_conn.fetchval(f'SELECT count(*) FROM "{db_schema}".items') == 1
    versions = await db_conn.fetch(f'SELECT version FROM "{db_schema}".schema_migrations')
    assert sorted(r["version"] for r in versions) == ["0001", "0002"]


async def test_new_files_are_applied_later(
    tmp_path: Path, db_schema: str, db_conn: asyncpg.Connection[Any]
) -> None:
    write(tmp_path, "0001_init.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    await apply_migrations(db_conn, db_schema, tmp_path)
    write(tmp_path, "0002_col.sql", "ALTER TABLE items ADD COLUMN note text;")
    assert await apply_migrations(db_conn, db_schema, tmp_path) == ["0002_col.sql"]


async def test_a_changed_applied_file_is_refused(
    tmp_path: Path, db_schema: str, db_conn: asyncpg.Connection[Any]
) -> None:
    write(tmp_path, "0001_init.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    await apply_migrations(db_conn, db_schema, tmp_path)
    write(tmp_path, "0001_init.sql", "CREATE TABLE items (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(db_conn, db_schema, tmp_path)


async def test_a_failing_file_applies_nothing(
    tmp_path: Path, db_schema: str, db_conn: asyncpg.Connection[Any]
) -> None:
    write(tmp_path, "0001_init.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    write(tmp_path, "0002_bad.sql", "ALTER TABLE nowhere ADD COLUMN x int;")
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        await apply_migrations(db_conn, db_schema, tmp_path)
    exists = await db_conn.fetchval("SELECT to_regclass($1)", f"{db_schema}.items")
    assert exists is None


async def test_pool_works_in_its_schema(
    database_url: str, db_schema: str, db_conn: asyncpg.Connection[Any], tmp_path: Path
) -> None:
    write(tmp_path, "0001_init.sql", "CREATE TABLE notes (id int PRIMARY KEY, body jsonb);")
    await apply_migrations(db_conn, db_schema, tmp_path)
    async with create_pool(database_url, db_schema, max_size=2) as pool:
        await ping(pool)
        await pool.execute("INSERT INTO notes VALUES (1, $1)", {"a": [1, 2]})
        assert await pool.fetchval("SELECT body FROM notes WHERE id = 1") == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("service", "columns"),
    [
        ("ingest", {("statements", "body"), ("outbox", "envelope")}),
        (
            "alerts",
            {
                ("alerts", "evidence"),
                ("alert_history", "details"),
                ("outbox", "envelope"),
                ("deliveries", "body"),
            },
        ),
    ],
)
async def test_the_large_values_are_compressed_with_lz4(
    service: str, columns: set[tuple[str, str]], db_schema: str, db_conn: asyncpg.Connection[Any]
) -> None:
    # the servers `make infra-up` starts (Debian's PostgreSQL 15) are built with lz4
    directory = files(f"services.{service}") / "migrations"
    await apply_migrations(db_conn, db_schema, directory)
    rows = await db_conn.fetch(
        "SELECT c.relname, a.attname FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attcompression::text = 'l'",
        db_schema,
    )
    assert {(r["relname"], r["attname"]) for r in rows} == columns
