"""The raw intake's dead-letter path: bounded bodies, permanent producer failures skipped,
unexpected parse failures dead-lettered."""

from __future__ import annotations

import asyncio
import base64
import gc
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.ingest import intake
from services.ingest.config import IngestSettings
from services.ingest.deadletter import (
    DEADLETTER_ORIGINAL_BUDGET,
    DeadLetters,
    Rejected,
    deadletter_body,
)
from services.ingest.handlers import authority_for
from services.ingest.intake import RawIntake
from services.ingest.metrics import IngestMetrics
from shared.kafka import Topics
from shared.xapi import Profile


def _record(value: bytes | None, offset: int = 0) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        "xapi.raw.acme", 0, offset, 0, 0, None, value, None, len(value or b""), 0, []
    )


def test_a_small_original_is_kept_whole() -> None:
    body = orjson.loads(deadletter_body(Rejected(_record(b"abc"), "invalid_statement", "x"), "t"))
    assert base64.b64decode(body["original"]) == b"abc"
    assert body["original_size"] == 3
    assert body["original_truncated"] is False


def test_a_huge_original_is_cut_to_the_budget() -> None:
    value = b"a" * (3 * DEADLETTER_ORIGINAL_BUDGET)
    body = orjson.loads(deadletter_body(Rejected(_record(value), "invalid_statement", "x"), "t"))
    assert base64.b64decode(body["original"]) == value[:DEADLETTER_ORIGINAL_BUDGET]
    assert body["original_size"] == len(value)
    assert body["original_truncated"] is True


class FakeProducer:
    def __init__(self, failures: list[Exception | None]) -> None:
        self.failures = failures
        self.sent: list[bytes] = []

    async def send(self, _topic: str, value: bytes, *, key: bytes | None) -> asyncio.Future[Any]:
        failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, MessageSizeTooLargeError):
            raise failure
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if failure is None:
            self.sent.append(value)
            future.set_result(None)
        else:
            future.set_exception(failure)
        return future


def _intake(producer: FakeProducer) -> tuple[RawIntake, IngestMetrics]:
    settings = IngestSettings(learner_key_salt=SecretStr("s" * 32), retry_max_seconds=0.01)
    metrics = IngestMetrics(CollectorRegistry())
    raw = RawIntake(settings, None, producer, Topics(), metrics)  # type: ignore[arg-type]
    return raw, metrics


async def test_a_permanent_deadletter_failure_is_counted_and_skipped() -> None:
    producer = FakeProducer([MessageSizeTooLargeError(), KafkaConnectionError(), None])
    metrics = IngestMetrics(CollectorRegistry())
    pauses: list[int] = []

    async def pause(attempt: int) -> None:
        pauses.append(attempt)

    deadletters = DeadLetters(producer, "dl", metrics, pause)
    rejected = [Rejected(_record(b"x", n), "invalid_statement", "json.invalid") for n in (0, 1)]
    await deadletters.send("acme", rejected)
    # the too-large one is skipped; the other is retried after the connection error
    assert [orjson.loads(v)["source"]["offset"] for v in producer.sent] == [1]
    failed = metrics.deadletter_failures.labels("acme", "json.invalid")._value.get()
    dead = metrics.deadletters.labels("acme", "json.invalid")._value.get()
    assert (failed, dead) == (1, 1)
    assert pauses == [1]  # one retry, after the connection error


def test_an_unexpected_parse_failure_is_rejected_not_raised(monkeypatch: Any) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RecursionError("too deep")

    monkeypatch.setattr(intake, "parse_statements_profiled", boom)
    raw, _ = _intake(FakeProducer([]))
    authority = authority_for("acme", intake.RAW_AUTHORITY_NAME)
    outcome = raw._parse("acme", _record(b"{}"), Profile.STRICT, datetime.now(UTC), authority)
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.rule) == ("unexpected", "unexpected")


async def test_the_collector_is_paused_while_a_batch_is_examined(monkeypatch: Any) -> None:
    seen: list[bool] = []

    def parse(*_: Any) -> Any:
        seen.append(gc.isenabled())
        raise ValueError("not a statement")

    raw, _ = _intake(FakeProducer([]))
    monkeypatch.setattr(raw, "_parse", parse)
    records = {TopicPartition("xapi.raw.acme", 0): [_record(b"{}", n) for n in range(3)]}
    assert gc.isenabled()
    with pytest.raises(ValueError, match="not a statement"):
        await raw._examine(records)
    assert seen == [False]
    assert gc.isenabled()  # back on, even when examining failed
    gc.disable()
    try:  # and left off when it was off before
        monkeypatch.setattr(raw, "_parse", lambda *_: [])
        await raw._examine(records)
        assert not gc.isenabled()
    finally:
        gc.enable()
