"""Fixtures for fault tests: a PRIVATE Kafka broker and PostgreSQL cluster on spare ports.

The shared servers (127.0.0.1:9092, 127.0.0.1:55432) are never touched here: the fault tests kill
and restart their own pair, started once per session with ``deploy/local/infra.sh`` (reusing the
fetched Kafka jars) and stopped afterwards, with every process verified gone.

The poison-message tests run on the shared servers under their own topic prefix and schema, with
the in-process ingest of ``tests/integration/ingest/conftest.py`` (its fixtures are re-exported).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.ingest import repository as repo
from services.ingest.app import Ingest, open_ingest
from services.ingest.auth import new_credential
from services.ingest.config import IngestSettings
from tests.integration.ingest.conftest import settings, start_ingest
from tests.integration.ports import answers, free_port

__all__ = ["settings", "start_ingest"]  # re-exported fixtures (poison tests)

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "local" / "infra.sh"
SALT = "resilience-salt"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class PrivateInfra:
    """A Kafka broker and a PostgreSQL cluster of our own, which tests may kill."""

    env: dict[str, str]
    state: Path
    kafka_port: int
    pg_port: int
    log: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def infra(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.log.append(f"$ infra.sh {' '.join(args)} -> {result.returncode}\n{result.stdout}")
        return result

    @property
    def kafka_pid(self) -> int | None:
        pid_file = self.state / "kafka" / "kafka.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def kill_kafka(self) -> None:
        """kill -9 the broker (no clean shutdown) and wait until it is gone (bounded)."""
        pid = self.kafka_pid
        assert pid is not None, "the private broker has no pid file"
        assert pid_alive(pid), "the private broker is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid)
        assert not answers(self.kafka_port)

    def start_kafka(self) -> None:
        up = self.infra("up", "kafka")
        assert up.returncode == 0, up.stdout + up.stderr

    def stop_postgres(self) -> None:
        down = self.infra("down", "postgres", timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not answers(self.pg_port)

    def start_postgres(self) -> None:
        up = self.infra("up", "postgres")
        assert up.returncode == 0, up.stdout + up.stderr

    def ensure_up(self) -> None:
        """Put back whatever a (possibly failed) test left down."""
        if not answers(self.kafka_port):
            self.start_kafka()
        if not answers(self.pg_port):
            self.start_postgres()


@pytest.fixture(scope="session")
def private_infra(tmp_path_factory: pytest.TempPathFactory) -> Any:
    libs = ROOT / ".local" / "kafka" / "libs"
    assert (libs / ".complete").exists(), "Kafka jars missing: run `deploy/local/infra.sh fetch`"
    state = tmp_path_factory.mktemp("private-infra") / "state"
    state.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}
    }
    env.update(
        SKILLSTREAM_LOCAL_DIR=str(state),
        SKILLSTREAM_KAFKA_LIBS=str(libs),
        SKILLSTREAM_KAFKA_PORT=str(free_port()),
        SKILLSTREAM_KAFKA_CONTROLLER_PORT=str(free_port()),
        SKILLSTREAM_PG_PORT=str(free_port()),
        SKILLSTREAM_READY_TIMEOUT="60",
        KAFKA_HEAP_OPTS="-Xms256m -Xmx512m",
    )
    infra = PrivateInfra(
        env, state, int(env["SKILLSTREAM_KAFKA_PORT"]), int(env["SKILLSTREAM_PG_PORT"])
    )
    try:
        up = infra.infra("up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield infra
    finally:
        kafka_pid = infra.kafka_pid
        down = infra.infra("down", timeout=90)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not answers(infra.kafka_port), "private broker still answers"
        assert not answers(infra.pg_port), "private PostgreSQL still answers"
        if kafka_pid is not None:
            assert not pid_alive(kafka_pid), f"private broker pid {kafka_pid} left behind"
        # as root the cluster may have been moved below /var/lib/postgresql (see infra.sh)
        pg_dir = str(state / "pg")
        moved = (
            "/var/lib/postgresql/skillstream-"
            + hashlib.sha1(pg_dir.encode(), usedforsecurity=False).hexdigest()[:12]
        )
        for marker in (str(state), moved):
            left = subprocess.run(
                ["pgrep", "-f", marker], capture_output=True, text=True, check=False
            ).stdout
            assert left == "", f"processes left behind: {left}"
        infra.infra("reset", timeout=60)


@dataclass
class PrivateRun:
    ingest: Ingest
    base: str
    http: aiohttp.ClientSession
    secrets: dict[str, str]

    def headers(self, tenant: str = "acme") -> dict[str, str]:
        raw = f"{tenant}.lms1:{self.secrets[tenant]}".encode()
        return {
            "Authorization": "Basic " + base64.b64encode(raw).decode(),
            "X-Experience-API-Version": "2.0.0",
        }

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.ingest.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)


StartPrivate = Callable[..., Awaitable[PrivateRun]]


@pytest.fixture
async def start_private(private_infra: PrivateInfra) -> AsyncIterator[StartPrivate]:
    """``await start_private(**overrides)``: an in-process ingest on the PRIVATE servers, with a
    schema and topic prefix of its own; the servers are put back up after the test."""
    unique = secrets.token_hex(4)
    base = IngestSettings(
        kafka_bootstrap_servers=private_infra.bootstrap,
        database_url=SecretStr(private_infra.dsn),
        topic_prefix=f"r{unique}.",
        db_schema=f"res_{unique}",
        partitions=2,
        http_port=0,
        max_body_bytes=64 * 1024,
        consumer_group=f"r{unique}.ingest",
        intake_enabled=False,
        relay_poll_seconds=0.2,
        relay_send_timeout_seconds=3.0,
        retry_max_seconds=1.0,
        learner_key_salt=SecretStr(SALT),
    )
    try:
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
            )

            async def start(**overrides: Any) -> PrivateRun:
                merged = base.model_copy(update=overrides)
                ingest = await stack.enter_async_context(open_ingest(merged))
                server = await stack.enter_async_context(TestServer(ingest.app, host="127.0.0.1"))
                creds: dict[str, str] = {}
                async with ingest.pool.acquire() as conn:
                    for tenant in ("acme", "globex"):
                        row, secret = new_credential(tenant, "lms1")
                        await repo.insert_credential(conn, row)
                        creds[tenant] = secret
                return PrivateRun(ingest, f"http://127.0.0.1:{server.port}", http, creds)

            yield start
    finally:
        private_infra.ensure_up()
