"""Paths, expectations and readers shared by the docker-compose.yml and Dockerfile tests.

Docker does not run where the unit tests run, so the tests read the files: this module holds their
paths, the compose service to settings class map and the other expected values, readers of a
compose document (loading it, Compose's variable interpolation, a service's environment, command,
health check and published ports), and :func:`settings_for`, which builds a settings class the way
the container does, from the compose environment alone.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.alerts.config import AlertsSettings
from services.ingest.config import IngestSettings
from services.progress.config import ProgressSettings
from shared.settings import ServiceSettings, env_names

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: compose service name -> the settings class of the service it runs
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "progress": ProgressSettings,
    "alerts": AlertsSettings,
}
#: the variables every service needs in a real deployment (their defaults are for development)
REQUIRED_SHARED = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SKILLSTREAM_LEARNER_KEY_SALT")
#: variables read by Python itself rather than by a settings class
ALLOWED_EXTRA_ENV = frozenset(
    {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONFAULTHANDLER", "PYTHONHASHSEED", "TZ"}
)
#: internal-topic settings that must be 1 on a one-node cluster
KAFKA_SINGLE_NODE_ONES = (
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
)
COMPILERS = ("gcc", "g++", "cc", "clang", "build-essential", "make")
HEALTHZ_URL = re.compile(r"https?://(?P<host>[^/:'\"\s]+):(?P<port>\d+)/healthz\b")

Compose = dict[str, Any]


# ---------------------------------------------------------------- reading compose


def load_compose() -> Compose:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    assert isinstance(doc.get("services"), dict), "docker-compose.yml has no services mapping"
    return doc


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?message}`` and ``${VAR?message}``."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if not missing:
            return current or ""
        if op is not None and op.endswith("?"):
            raise ValueError(f"${{{name}}} is required: {arg}")
        return arg if op is not None else ""

    return _INTERPOLATION.sub(substitute, value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def environment_of(
    service: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service's environment after interpolation (with the defaults written in the file,
    not whatever the shell running the tests happens to export)."""
    raw = service.get("environment") or {}
    pairs: dict[str, Any]
    if isinstance(raw, list):
        pairs = dict(str(item).partition("=")[::2] for item in raw)
    else:
        pairs = dict(raw)
    return {str(k): interpolate(_scalar(v), env or {}) for k, v in pairs.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def healthcheck_text(service: Mapping[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return test if isinstance(test, str) else " ".join(str(part) for part in test or [])


def published_container_ports(service: Mapping[str, Any]) -> list[int]:
    """Container-side ports of ``ports:``, short (``[ip:][host:]container[/proto]``) or long."""
    ports: list[int] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
            continue
        container = str(entry).split("/", 1)[0].rsplit(":", 1)[-1]
        ports.append(int(container))  # a range "8080-8081" fails here, on purpose
    return ports


def app_services(compose: Compose) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in SETTINGS:
        yield name, compose["services"][name]


def settings_for(
    cls: type[ServiceSettings], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    """Build ``cls`` the way the container does: from the compose environment alone."""
    for var in env_names(cls):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return cls()
