"""Settings of the ingest service: variables prefixed ``INGEST_`` and the shared ones."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_")

    db_schema: str = Field(
        default="ingest",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Schema this service owns.",
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the xAPI statements endpoint."
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; larger ones get 413.",
    )
    http_body_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a request body may take to arrive; a slower client gets 408 "
        "and its connection is closed.",
    )
    consumer_group: str = Field(
        default="skillstream-ingest", description="Consumer group reading the raw topics."
    )
    raw_default_version: str = Field(
        default="2.0.0",
        pattern=r"^(1\.0\.[0-9]+|2\.0\.[0-9]+)$",
        description="xAPI version of raw Kafka records without an X-Experience-API-Version header.",
    )
    directory_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the alerts service presents to read learner display names "
        "(POST /directory/names); unset: no such route.",
    )
    http_fallback_version: str = Field(
        default="2.0.0",
        pattern=r"^(1\.0\.3|2\.0\.0)$",
        description="X-Experience-API-Version sent back to a request that did not say which "
        "version it speaks (e.g. the 400 for a missing header): the version most clients of "
        "this deployment use.",
    )
    profile_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a tenant's validation profile is remembered (0: never); a "
        "change made with the CLI takes effect within this time.",
    )
    intake_enabled: bool = Field(
        default=True, description="Consume the raw per-tenant topics (xapi.raw.<tenant>)."
    )
    intake_max_records: int = Field(
        default=2000, ge=1, le=100_000, description="Most raw records handled in one batch."
    )
    intake_metadata_max_age_ms: int = Field(
        default=30_000,
        ge=100,
        description="How often the raw-topic pattern is re-matched against the broker's topics.",
    )
    archive_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Most archive transactions of HTTP requests under way at once; requests "
        "arriving meanwhile are stored together by the next one (group commit).",
    )
    archive_group_rows: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most statements one group-commit transaction stores (a request is never "
        "split).",
    )
    relay_batch: int = Field(
        default=5000, ge=1, le=100_000, description="Most outbox rows published per round."
    )
    producer_batch_bytes: int = Field(
        default=512 * 1024,
        ge=16 * 1024,
        le=1024 * 1024,
        description="Largest record batch the producer builds per partition (the relay fills "
        "them with the batch API; bigger batches cost far less CPU per statement).",
    )
    relay_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Outbox poll interval when no NOTIFY arrives (also the retry pause).",
    )
    relay_send_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long the relay waits for Kafka to ack a batch."
    )
    auth_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a verified credential is remembered in memory (0: never); "
        "revocation takes effect within this time.",
    )
    retry_max_seconds: float = Field(
        default=10.0, gt=0, description="Longest back-off between retries of a failed step."
    )
