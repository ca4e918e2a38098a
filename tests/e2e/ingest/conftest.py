"""The ingest service as a real process (``python -m services.ingest``) on the shared servers,
under its own topic prefix and PostgreSQL schema (both removed afterwards); its standard error is
captured to a file so tests can scan the logs.

The in-process fixtures of ``tests/integration/ingest/conftest.py`` are re-exported for the
tests that need the aiohttp application itself (route enumeration).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.ingest import repository as repo
from services.ingest.auth import new_credential
from shared.kafka import kafka_admin
from tests.integration.ingest.conftest import settings, start_ingest

__all__ = ["settings", "start_ingest"]

ROOT = Path(__file__).resolve().parents[3]
SALT = "e2e-abuse-salt"
MAX_BODY = 256 * 1024
TENANTS = ("acme", "globex")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A running ingest process."""

    proc: subprocess.Popen[bytes]
    port: int
    stderr: Path
    schema: str
    prefix: str
    secrets: dict[str, str]
    bootstrap: str
    dsn: str

    def auth(self, tenant: str = "acme") -> str:
        raw = f"{tenant}.lms1:{self.secrets[tenant]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def headers(self, tenant: str = "acme", version: str = "2.0.0") -> dict[str, str]:
        return {
            "Authorization": self.auth(tenant),
            "X-Experience-API-Version": version,
            "Content-Type": "application/json",
        }

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 15.0,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")


async def _add_credentials(dsn: str, schema: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        out: dict[str, str] = {}
        for tenant in TENANTS:
            row, secret = new_credential(tenant, "lms1")
            await repo.insert_credential(conn, row)
            out[tenant] = secret
        return out
    finally:
        await conn.close()


async def _drop(dsn: str, schema: str, bootstrap: str, prefix: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    async with kafka_admin(bootstrap) as admin:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)


@pytest.fixture(scope="module")
def service(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    unique = secrets.token_hex(4)
    schema, prefix, port = f"e2e_{unique}", f"e{unique}.", free_port()
    stderr = tmp_path_factory.mktemp("ingest-logs") / "stderr.log"
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        SKILLSTREAM_TOPIC_PREFIX=prefix,
        SKILLSTREAM_PARTITIONS="2",
        SKILLSTREAM_LEARNER_KEY_SALT=SALT,
        SKILLSTREAM_LOG_LEVEL="INFO",
        INGEST_DB_SCHEMA=schema,
        INGEST_HTTP_PORT=str(port),
        INGEST_MAX_BODY_BYTES=str(MAX_BODY),
        INGEST_CONSUMER_GROUP=f"{prefix}ingest",
        INGEST_INTAKE_ENABLED="true",
        INGEST_INTAKE_METADATA_MAX_AGE_MS="500",
        INGEST_RELAY_POLL_SECONDS="0.2",
        INGEST_RETRY_MAX_SECONDS="1",
    )
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    svc: Service | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"ingest exited: {stderr.read_text()[-2000:]}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            assert time.monotonic() < deadline, f"ingest not ready: {stderr.read_text()[-2000:]}"
            time.sleep(0.3)
        creds = asyncio.run(_add_credentials(database_url, schema))
        svc = Service(proc, port, stderr, schema, prefix, creds, kafka_bootstrap, database_url)
        yield svc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        assert proc.returncode is not None
        asyncio.run(_drop(database_url, schema, kafka_bootstrap, prefix))


def json_body(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)
