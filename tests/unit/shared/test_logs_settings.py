from __future__ import annotations

import logging

import orjson
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from shared.logs import JsonFormatter
from shared.settings import ServiceSettings, env_names, markdown_table


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")
    widgets: int = 3


def test_json_log_lines_carry_extras_and_exceptions() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "INFO", "levelno": 20, "msg": "hello %s", "args": ("you",)}
    )
    record.tenant = "acme"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    doc = orjson.loads(JsonFormatter("demo").format(record))
    assert doc["msg"] == "hello you"
    assert doc["service"] == "demo"
    assert doc["tenant"] == "acme"
    assert "RuntimeError: boom" in doc["exc"]


def test_shared_names_are_unprefixed_and_own_names_prefixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    monkeypatch.setenv("DEMO_WIDGETS", "7")
    monkeypatch.setenv("DEMO_HTTP_PORT", "9000")
    settings = DemoSettings()
    assert settings.kafka_bootstrap_servers == "k:1"
    assert settings.widgets == 7
    assert settings.http_port == 9000
    names = env_names(DemoSettings)
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "DEMO_WIDGETS", "DEMO_HTTP_PORT"} <= set(
        names
    )
    assert "DEMO_KAFKA_BOOTSTRAP_SERVERS" not in names


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLSTREAM_LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="SKILLSTREAM_LOG_LEVEL"):
        DemoSettings()


def test_secrets_are_not_shown() -> None:
    settings = DemoSettings()
    assert "postgres@" not in repr(settings)
    table = markdown_table([DemoSettings])
    assert "| `DATABASE_URL` | all services | (secret) |" in table
    assert "`DEMO_WIDGETS`" in table
