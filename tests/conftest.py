"""Fixtures shared by every test.

Unit tests use none of the server fixtures. Integration and end-to-end tests get the real Kafka
broker and PostgreSQL server started by ``make infra-up`` (or the ones named by
``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``). When a server does not answer, the test FAILS
with the command that starts it: a missing server never turns into a silent skip.

Isolation: every test gets its own topic prefix and its own PostgreSQL schema, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.kafka import Topics, kafka_admin

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:55432/postgres"
START_HINT = "start the local servers with `make infra-up` (or set {var} to a running server)"


def _first_host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",", 1)[0].rpartition(":")
    return host or "127.0.0.1", int(port)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    if not _answers(*_first_host_port(bootstrap)):
        pytest.fail(
            f"Kafka is not reachable at {bootstrap}: "
            + START_HINT.format(var="KAFKA_BOOTSTRAP_SERVERS"),
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def database_url() -> str:
    dsn = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    host_port = dsn.split("@")[-1].split("/")[0]
    host, _, port = host_port.rpartition(":")
    if not _answers(host or "127.0.0.1", int(port or 5432)):
        pytest.fail(
            f"PostgreSQL is not reachable at {host_port}: " + START_HINT.format(var="DATABASE_URL"),
            pytrace=False,
        )
    return dsn


@pytest.fixture
def unique_id() -> str:
    """A short random id for names that must not collide between tests or runs."""
    return secrets.token_hex(4)


@pytest.fixture
def topic_prefix(unique_id: str) -> str:
    """A prefix for every topic this test creates, e.g. ``t3f9a0c1d.``."""
    return f"t{unique_id}."


@pytest.fixture
def topics(topic_prefix: str) -> Topics:
    return Topics(prefix=topic_prefix, partitions=2)


@pytest.fixture
async def kafka_cleanup(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[None]:
    """Delete every topic (and Faust changelog) named with this test's prefix afterwards."""
    yield
    async with kafka_admin(kafka_bootstrap) as admin:
        names = [t for t in await admin.list_topics() if t.startswith(topic_prefix)]
        if names:
            await admin.delete_topics(names)


@contextlib.asynccontextmanager
async def fresh_schema(database_url: str, schema: str) -> AsyncIterator[str]:
    """Create ``schema``; drop it with everything in it on exit."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def db_schema(database_url: str, unique_id: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for this test, dropped with everything in it afterwards."""
    async with fresh_schema(database_url, f"test_{unique_id}") as schema:
        yield schema


@pytest.fixture
async def db_conn(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests keep files worth looking at after a run (screenshots, reports)."""
    path = Path(os.environ.get("SKILLSTREAM_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder, so `pytest -m "not integration"` runs the unit tests alone."""
    for item in items:
        path = str(item.path)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
