"""The three services as subprocesses, in a topic prefix and PostgreSQL schemas of their own.

:class:`Pipeline` starts ``python -m services.ingest|progress|alerts`` with one shared
environment (broker, database, learner-key salt, topic prefix ``<name><id>.``) and per-service
schema names and ports, waits for each ``/readyz``, runs the services' own CLIs (credentials,
frameworks, staff tokens), scrapes their ``/metrics``, and stops them with SIGTERM (waited for;
SIGKILL only if one ignores it). :meth:`Pipeline.cleanup` deletes the run's topics and schemas.

Used by ``python -m tools.demo`` and by ``bench/bench_alert_quality.py`` / ``bench/bench_e2e.py``.

The process and port helpers are in :mod:`tools.demo.processes`, the ``/metrics`` reading in
:mod:`tools.demo.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

import aiohttp

from tools.demo.metrics import Metrics, parse_metrics, read_metrics, sample_total
from tools.demo.processes import free_port, pid_alive, port_free, terminate_with_parent

ROOT: Final = Path(__file__).resolve().parents[2]

SERVICES: Final = ("ingest", "progress", "alerts")
DEFAULT_PORTS: Final = {"ingest": 8080, "progress": 8081, "alerts": 8082}
DEFAULT_KAFKA: Final = "127.0.0.1:9092"
DEFAULT_DATABASE: Final = "postgresql://postgres@127.0.0.1:55432/postgres"
STOP_SECONDS: Final = 30.0


class PipelineError(RuntimeError):
    """A service could not be started, or a CLI step failed."""


def pick_ports(wanted: Mapping[str, int]) -> tuple[dict[str, int], list[str]]:
    """The ports to use (0 or a busy port: a free one instead) and notes on what moved."""
    ports: dict[str, int] = {}
    notes: list[str] = []
    for name in SERVICES:
        port = wanted.get(name, 0)
        if port and not port_free(port):
            notes.append(f"port {port} is busy: {name} uses a free port instead")
            port = 0
        ports[name] = port or free_port()
    return ports, notes


@dataclass
class Pipeline:
    """One run of the three services. ``name`` starts the topic prefix and schema names."""

    name: str = "demo"
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    salt: str = ""
    log_dir: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    log_level: str = "WARNING"
    notes: list[str] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
        self.dsn = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
        self.salt = (
            self.salt
            or os.environ.get("SKILLSTREAM_LEARNER_KEY_SALT", "")
            or f"{self.name}-{secrets.token_hex(16)}"
        )
        self.prefix = f"{self.name}{self.run_id}."
        self.schemas = {s: f"{self.name}_{self.run_id}_{s}" for s in SERVICES}
        self.bound, notes = pick_ports(self.ports)
        self.notes.extend(notes)
        if self.log_dir is None:
            self.log_dir = ROOT / ".local" / self.name / f"{self.name}{self.run_id}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.bound[service]}"

    def env(self, service: str) -> dict[str, str]:
        upper = service.upper()
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DATABASE_URL=self.dsn,
            SKILLSTREAM_LEARNER_KEY_SALT=self.salt,
            SKILLSTREAM_TOPIC_PREFIX=self.prefix,
            SKILLSTREAM_LOG_LEVEL=self.log_level,
            PYTHONUNBUFFERED="1",
        )
        env[f"{upper}_DB_SCHEMA"] = self.schemas[service]
        env[f"{upper}_HTTP_PORT"] = str(self.bound[service])
        env.update(self.extra_env)
        env.update(self.service_env.get(service, {}))
        return env

    def log_path(self, service: str) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{service}.log"

    def start(self) -> None:
        """Start the three services (not waiting for them; see :meth:`wait_ready`)."""
        for service in SERVICES:
            self.start_service(service)

    def start_service(self, service: str) -> None:
        """Start one service, its output appended to its log (again, after a kill: the log of
        the process it replaces is closed)."""
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(service).open("ab")
        old = self._logs.pop(service, None)
        if old is not None:
            old.close()
        self._logs[service] = log
        self.procs[service] = subprocess.Popen(  # noqa: S603 - our own services
            [sys.executable, "-m", f"services.{service}"],
            env=self.env(service),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # own process group: the terminal's Ctrl-C reaches the demo only, which then
            # stops the services in order with SIGTERM
            start_new_session=True,
            # and should the demo itself be killed, the kernel stops them: no orphans
            preexec_fn=terminate_with_parent(),  # noqa: PLW1509 - one syscall, no locks
        )

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def log_tail(self, service: str, chars: int = 3000) -> str:
        try:
            return self.log_path(service).read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    async def wait_ready(self, limit: float = 120.0) -> float:
        """Wait until every ``/readyz`` answers 200; returns the seconds it took."""
        began = time.monotonic()
        pending = set(SERVICES)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while pending:
                for service in sorted(pending):
                    proc = self.procs[service]
                    if proc.poll() is not None:
                        raise PipelineError(
                            f"{service} exited with {proc.returncode}:\n{self.log_tail(service)}"
                        )
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with http.get(self.url(service) + "/readyz") as resp:
                            if resp.status == 200:
                                pending.discard(service)
                if pending:
                    if time.monotonic() - began > limit:
                        tails = "\n".join(f"--- {s}\n{self.log_tail(s)}" for s in pending)
                        raise PipelineError(f"not ready in {limit:.0f} s: {pending}\n{tails}")
                    await asyncio.sleep(0.3)
        return time.monotonic() - began

    async def cli(self, service: str, *args: str) -> str:
        """Run ``python -m services.<service>.cli ARGS`` in this run's environment."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            f"services.{service}.cli",
            *args,
            env=self.env(service),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        if proc.returncode != 0:
            raise PipelineError(
                f"services.{service}.cli {' '.join(args)} failed ({proc.returncode}): "
                f"{err.decode(errors='replace')[-2000:]}"
            )
        return out.decode()

    async def ingest_credential(self, tenant: str, name: str) -> tuple[str, str]:
        out = await self.cli("ingest", "credentials", "create", "--tenant", tenant, "--name", name)
        user = out.split("username:")[1].split()[0]
        secret = out.split("secret:")[1].split()[0]
        return user, secret

    async def staff_token(self, tenant: str, name: str, team: str | None = None) -> str:
        args = ["tokens", "create", "--tenant", tenant, "--name", name]
        if team:
            args += ["--team", team]
        out = await self.cli("alerts", *args)
        return out.split("token:")[1].split()[0]

    async def load_frameworks(self, path: Path) -> str:
        """Into progress, and each tenant's programmes (calendars, live sessions, cohorts) into
        alerts, for the missed-sessions detector (all at once)."""
        outs = await asyncio.gather(
            self.cli("progress", "frameworks", "load", str(path)),
            *(
                self.cli("alerts", "programmes", "load", "--tenant", t, "--file", str(path))
                for t in tenants_of(path)
            ),
        )
        return "".join(outs)

    async def metric_pages(self, http: aiohttp.ClientSession) -> dict[str, str]:
        pages: dict[str, str] = {}
        for service in SERVICES:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(self.url(service) + "/metrics") as resp:
                    if resp.status == 200:
                        pages[service] = await resp.text()
        return pages

    async def metrics(self, http: aiohttp.ClientSession) -> Metrics:
        return read_metrics(await self.metric_pages(http))

    async def wait_frameworks(self, http: aiohttp.ClientSession, count: int, limit: float) -> bool:
        """Wait until the progress worker's registry holds ``count`` framework versions."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pages = await self.metric_pages(http)
            samples = parse_metrics(pages.get("progress", ""))
            if sample_total(samples, "skillstream_progress_framework_versions") >= count:
                return True
            await asyncio.sleep(0.5)
        return False

    def stop(self, timeout: float = STOP_SECONDS) -> dict[str, int | None]:
        """SIGTERM every service (ingest first, so nothing new enters), wait for each; SIGKILL
        one that is still running after ``timeout``. Returns the exit codes."""
        for service in SERVICES:
            proc = self.procs.get(service)
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for service, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.notes.append(f"{service} ignored SIGTERM for {timeout:.0f} s: killed")
                proc.kill()
                proc.wait(10)
            codes[service] = proc.returncode
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        return codes

    def leftovers(self) -> list[int]:
        """Service pids still running (should be none after :meth:`stop`)."""
        return [pid for pid in self.pids().values() if pid_alive(pid)]

    async def cleanup(self) -> None:
        """Delete the run's topics and schemas."""
        import asyncpg

        from shared.kafka import kafka_admin

        with contextlib.suppress(Exception):
            async with kafka_admin(self.bootstrap) as admin:
                names = [t for t in await admin.list_topics() if t.startswith(self.prefix)]
                if names:
                    await admin.delete_topics(names)
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.dsn)
            try:
                for schema in self.schemas.values():
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


def tenants_of(framework_yaml: Path) -> list[str]:
    """Tenant ids of a framework file written by the simulator (one document per tenant)."""
    import yaml

    return [
        str(doc["tenant"])
        for doc in yaml.safe_load_all(framework_yaml.read_text(encoding="utf-8"))
        if doc
    ]
