"""JSON logs on standard error, one object per line, configured once per process."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

# attributes every LogRecord has; anything else passed through ``extra=`` is logged as a field
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, extras, exception."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class _Once:
    configured: ClassVar[bool] = False


def setup_logging(service: str, level: str = "INFO", *, force: bool = False) -> None:
    """Send every logger's records to stderr as JSON. A second call does nothing unless
    ``force`` (tests use it); the level can always be changed with ``logging.getLogger().setLevel``.
    """
    if _Once.configured and not force:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka and faust are chatty at INFO about every rebalance step
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
    _Once.configured = True
