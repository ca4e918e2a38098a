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
