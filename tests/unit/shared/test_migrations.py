from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import MigrationError
from shared.migrations import load_migrations


def write(tmp_path: Path, name: str, sql: str) -> None:
    (tmp_path / name).write_text(sql, encoding="utf-8")


def test_files_are_loaded_in_version_order(tmp_path: Path) -> None:
    write(tmp_path, "0002_more.sql", "ALTER TABLE t ADD COLUMN b int;")
    write(tmp_path, "0001_init.sql", "CREATE TABLE t (a int);")
    write(tmp_path, "README.md", "not a migration")
    assert [m.name for m in load_migrations(tmp_path)] == ["0001_init.sql", "0002_more.sql"]


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE t;",
        "ALTER TABLE t DROP COLUMN a;",
        "drop schema s cascade;",
        "TRUNCATE t;",
        "DELETE FROM t;",
    ],
)
def test_destructive_statements_are_refused(tmp_path: Path, sql: str) -> None:
    write(tmp_path, "0001_bad.sql", sql)
    with pytest.raises(MigrationError, match="destructive"):
        load_migrations(tmp_path)


def test_destructive_words_in_comments_and_guarded_deletes_are_fine(tmp_path: Path) -> None:
    write(
        tmp_path,
        "0001_ok.sql",
        "-- never DROP TABLE here\nDELETE FROM t WHERE a < 0;\nCREATE INDEX i ON t (a);",
    )
    assert len(load_migrations(tmp_path)) == 1


@pytest.mark.parametrize("name", ["1_init.sql", "0001-init.sql", "0001_Init.sql"])
def test_badly_named_files_are_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name"):
        load_migrations(tmp_path)


def test_two_files_with_one_version_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "SELECT 1;")
    write(tmp_path, "0001_b.sql", "SELECT 2;")
    with pytest.raises(MigrationError, match="share a version"):
        load_migrations(tmp_path)
