"""Settings of the alerts service: variables prefixed ``ALERTS_`` and the shared ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_")

    db_schema: str = Field(
        default="alerts",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Schema this service owns.",
    )
    http_port: int = Field(default=8082, ge=0, le=65535, description="Port of the HTTP API.")
    app_id: str = Field(
        default="skillstream-alerts",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id: consumer group and changelog topic names (after the prefix).",
    )
    group_instance_id: str | None = Field(
        default=None, description="Static group membership id (e.g. the pod name), or none."
    )
    stream_enabled: bool = Field(
        default=True, description="Consume progress.updates (off: API, relay and workers only)."
    )
    batch_max: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most progress updates applied in one PostgreSQL transaction.",
    )
    batch_within_seconds: float = Field(
        default=0.05,
        gt=0,
        le=10,
        description="Longest wait for a batch to fill before it is applied (adds to latency).",
    )
    inactivity_clock: Literal["wall", "event"] = Field(
        default="wall",
        description="Clock of the inactivity and missed-sessions scanner: 'wall' (now, live "
        "data) or 'event' (the event time applied from every partition, for replays).",
    )
    scan_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often inactivity, missed live sessions and expired snoozes are checked.",
    )
    settings_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long per-tenant detector settings are cached."
    )
    relay_batch: int = Field(default=500, ge=1, description="Most outbox rows per round.")
    relay_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Outbox and delivery poll interval without NOTIFY."
    )
    relay_send_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long the relay waits for Kafka to ack a batch."
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of one webhook request."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="Attempts before a delivery is dead-lettered."
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles per attempt."
    )
    webhook_backoff_max_seconds: float = Field(
        default=600.0, gt=0, description="Longest delay between two attempts."
    )
    webhook_concurrency: int = Field(
        default=10, ge=1, le=200, description="Webhook requests in flight at once."
    )
    ingest_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Base URL of ingest (e.g. http://ingest:8080), asked for learner display "
        "names shown to staff tokens allowed to see them; unset: no names.",
    )
    ingest_directory_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of ingest's /directory/names (INGEST_DIRECTORY_TOKEN).",
    )
    retry_max_seconds: float = Field(
        default=10.0, gt=0, description="Longest back-off when PostgreSQL or Kafka is away."
    )
