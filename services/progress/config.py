"""Settings of the progress service: variables prefixed ``PROGRESS_`` and the shared ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ProgressSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROGRESS_")

    db_schema: str = Field(
        default="progress",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Schema this service owns.",
    )
    http_port: int = Field(default=8081, ge=0, le=65535, description="Port of the HTTP API.")
    app_id: str = Field(
        default="skillstream-progress",
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="Faust app id: consumer group and changelog topic names (after the prefix).",
    )
    data_dir: str | None = Field(
        default=None, description="Faust data directory (memory:// tables keep nothing there)."
    )
    group_instance_id: str | None = Field(
        default=None, description="Static group membership id (e.g. the pod name)."
    )
    batch_max: int = Field(
        default=1000, ge=1, le=100_000, description="Most statements processed per batch."
    )
    batch_within_seconds: float = Field(
        default=0.2, gt=0, le=10, description="Longest wait to fill a batch before processing."
    )
    recent_ids: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Statement event ids remembered per learner to ignore redeliveries.",
    )
    framework_poll_seconds: float = Field(
        default=2.0, gt=0, le=300, description="How often the framework registry is refreshed."
    )
    stalled_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description="A started, unmastered competency with no evidence for this long is stalled.",
    )
    stalled_attempts: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="An unmastered competency with at least this many attempts is stalled.",
    )
    lag_interval_seconds: float = Field(
        default=15.0, gt=0, le=600, description="How often the consumer lag gauge is measured."
    )
