"""Settings of the alerts service: variables prefixed ``ALERTS_`` and the shared ones."""

from __future__ import annotations

from pydantic import Field
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
