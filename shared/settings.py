"""Settings shared by every service, read from the environment with pydantic-settings.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix`` (``INGEST_``,
``PROGRESS_``, ``ALERTS_``). The settings every service shares keep one unprefixed or
``SKILLSTREAM_``-prefixed name, so one deployment-wide value (the broker, the database, the
learner-key salt) is set once:

=============================  ===========================================================
``KAFKA_BOOTSTRAP_SERVERS``    the broker list
``DATABASE_URL``               the PostgreSQL DSN
``SKILLSTREAM_*``              deployment-wide choices (topic names, salt, partitions, logs)
=============================  ===========================================================

Settings are built at start-up (``IngestSettings()``), never at import time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the event loops a service can run on (``SKILLSTREAM_EVENT_LOOP``; see
#: :func:`shared.service.run_until_stopped`)
EventLoop = Literal["uvloop", "asyncio"]


def _shared(name: str) -> Any:
    """A field read from exactly one, unprefixed environment variable."""
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """Fields common to every service. Subclasses set ``env_prefix`` and add their own."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=_shared("KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:55432/postgres"),
        validation_alias=_shared("DATABASE_URL"),
        description="PostgreSQL DSN (postgresql://user:password@host:port/db).",
    )
    learner_key_salt: SecretStr = Field(
        default=SecretStr("dev-only-salt-change-me"),
        min_length=8,
        validation_alias=_shared("SKILLSTREAM_LEARNER_KEY_SALT"),
        description="Per-deployment secret that makes learner keys non-reversible.",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        validation_alias=_shared("SKILLSTREAM_TOPIC_PREFIX"),
        description="Prefix put before every topic name (isolates environments and tests).",
    )
    partitions: int = Field(
        default=4,
        ge=1,
        le=256,
        validation_alias=_shared("SKILLSTREAM_PARTITIONS"),
        description="Partitions of the keyed topics; caps the number of workers per service.",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        le=7,
        validation_alias=_shared("SKILLSTREAM_REPLICATION_FACTOR"),
        description="Replication factor of the topics Skillstream creates (1 for one broker).",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        validation_alias=_shared("SKILLSTREAM_LOG_LEVEL"),
        description="Log level of the JSON logs written to standard error.",
    )
    db_schema: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema this service owns (each service has its own).",
    )
    event_loop: EventLoop = Field(
        default="uvloop",
        validation_alias=_shared("SKILLSTREAM_EVENT_LOOP"),
        description="Event loop the service runs on: 'uvloop' (libuv; less CPU per request and "
        "message) or 'asyncio' (the standard library's).",
    )
    db_pool_min: int = Field(default=1, ge=0, le=100, description="Smallest pool size.")
    db_pool_max: int = Field(default=10, ge=1, le=200, description="Largest pool size.")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(default=8000, ge=0, le=65535, description="Port of the HTTP server.")


def env_names(cls: type[BaseSettings]) -> dict[str, tuple[str, FieldInfo]]:
    """Map every environment variable ``cls`` reads to ``(field name, field info)``.

    Used to check docker-compose and Kubernetes manifests against the code and to write the
    README's configuration table.
    """
    prefix = str(cls.model_config.get("env_prefix") or "")
    names: dict[str, tuple[str, FieldInfo]] = {}
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.upper()] = (field_name, info)
        elif isinstance(alias, str):
            names[alias.upper()] = (field_name, info)
        else:
            names[f"{prefix}{field_name}".upper()] = (field_name, info)
    return names


def markdown_table(classes: list[type[BaseSettings]]) -> str:
    """The README configuration table: one row per environment variable."""
    rows = ["| variable | read by | default | meaning |", "| --- | --- | --- | --- |"]
    seen: dict[str, list[str]] = {}
    info_of: dict[str, FieldInfo] = {}
    for cls in classes:
        for env, (_, info) in env_names(cls).items():
            seen.setdefault(env, []).append(cls.__name__)
            info_of.setdefault(env, info)
    for env in sorted(seen, key=lambda e: (len(seen[e]) < len(classes), e)):
        info = info_of[env]
        default = info.get_default(call_default_factory=True)
        shown = "(secret)" if isinstance(default, SecretStr) else f"`{default!s}`"
        shown = '`""`' if default == "" else shown
        readers = "all services" if len(seen[env]) == len(classes) else ", ".join(seen[env])
        rows.append(f"| `{env}` | {readers} | {shown} | {info.description or ''} |")
    return "\n".join(rows) + "\n"
