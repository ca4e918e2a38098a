from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RequestTimedOutError

from shared.errors import (
    DependencyUnavailableError,
    InvalidMessageError,
    MigrationError,
    UnknownSchemaError,
    is_retriable,
)


@pytest.mark.parametrize(
    "exc",
    [
        DependencyUnavailableError("db down"),
        ConnectionRefusedError(),
        TimeoutError(),
        KafkaConnectionError(),
        RequestTimedOutError(),
        asyncpg.exceptions.SerializationError("conflict"),
        asyncpg.exceptions.CannotConnectNowError("starting"),
        asyncpg.exceptions.TooManyConnectionsError("full"),
    ],
)
def test_transient_failures_are_retriable(exc: BaseException) -> None:
    assert is_retriable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        InvalidMessageError("bad json"),
        UnknownSchemaError("v9"),
        MigrationError("destructive"),
        ValueError("bug"),
        KeyError("bug"),
        asyncpg.exceptions.UniqueViolationError("dup"),
        MessageSizeTooLargeError(),
    ],
)
def test_permanent_and_unknown_failures_are_not_retriable(exc: BaseException) -> None:
    assert not is_retriable(exc)


def test_permanent_errors_carry_a_reason_for_dead_letters() -> None:
    assert UnknownSchemaError("x").reason == "unknown_schema"
    assert InvalidMessageError("x").reason == "invalid_message"
