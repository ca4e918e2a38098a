"""``python -m tools.deadletters`` on the real broker, reading dead-letters written in the
services' own formats: ingest's refused raw record, progress's unusable statement, alerts'
unusable progress update."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from services.alerts.app import deadletter_topic
from services.alerts.settings_store import deadletter_record
from services.ingest.deadletter import Rejected, deadletter_body
from services.progress.pipeline import deadletter_body as progress_deadletter
from shared.kafka import Topics, TopicSpec, ensure_topics, kafka_admin, kafka_producer
from shared.xapi import Violation
from tools.deadletters import main

RAW = b'{"verb": {"id": "http://adlnet.gov/expapi/verbs/answered"}}'


def _raw_record(topic: str, offset: int) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, 0, offset, 0, 0, None, RAW, None, 0, len(RAW), ())


def _lines(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines()]


@pytest.mark.usefixtures("kafka_cleanup")
async def test_dead_letters_are_listed_filtered_and_decoded(
    kafka_bootstrap: str, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    statements, updates = topics.deadletter, deadletter_topic(topics)
    async with kafka_admin(kafka_bootstrap) as admin:
        await ensure_topics(admin, [TopicSpec(statements, 1), TopicSpec(updates, 1)])
    missing = [Violation("$.actor", "actor.missing", "actor is required")]
    progress_event = SimpleNamespace(
        message=SimpleNamespace(topic=topics.statements, partition=1, offset=7), value=b"{}"
    )
    async with kafka_producer(kafka_bootstrap) as producer:
        for value in (
            deadletter_body(
                Rejected(_raw_record("xapi.raw.acme", 3), "invalid_statement", "actor.missing",
                         missing), "acme"),
            deadletter_body(Rejected(_raw_record("xapi.raw.beta", 9), "invalid_statement",
                                     "verb.missing"), "beta"),
            progress_deadletter("unknown_schema", "schema x.v9 is not accepted", progress_event),
        ):  # fmt: skip
            await producer.send_and_wait(statements, value)
        await producer.send_and_wait(
            updates, deadletter_record(b"acme|abc", b"not json", "invalid_payload", "no envelope")
        )

    common = ["--bootstrap", kafka_bootstrap, "--prefix", topics.prefix]
    assert await asyncio.to_thread(main, [*common, "--decode"]) == 0
    listed = _lines(capsys.readouterr().out)
    assert [r["reason"] for r in listed] == ["invalid_statement"] * 2 + ["unknown_schema"]
    assert [r["kafka"]["offset"] for r in listed] == [0, 1, 2]
    acme = listed[0]
    assert (acme["tenant"], acme["rule"], acme["source"]["offset"]) == ("acme", "actor.missing", 3)
    assert acme["violations"][0]["path"] == "$.actor"
    assert acme["original_text"] == RAW.decode()
    assert listed[2]["service"] == "progress"
    assert listed[2]["original_text"] == "{}"

    await asyncio.to_thread(main, [*common, "--tenant", "beta"])
    [beta] = _lines(capsys.readouterr().out)
    assert (beta["rule"], "original_text" in beta) == ("verb.missing", False)

    await asyncio.to_thread(main, [*common, "--last", "1"])
    assert [r["reason"] for r in _lines(capsys.readouterr().out)] == ["unknown_schema"]

    await asyncio.to_thread(main, [*common, "--reason", "unknown_schema", "--last", "5"])
    assert len(_lines(capsys.readouterr().out)) == 1

    await asyncio.to_thread(main, [*common, "--from", "updates", "--tenant", "acme", "--decode"])
    [update] = _lines(capsys.readouterr().out)
    assert (update["key"], update["original"], update["reason"]) == (
        "acme|abc",
        "not json",
        "invalid_payload",
    )
    assert "original_text" not in update  # alerts keeps the original as text already


@pytest.mark.usefixtures("kafka_cleanup")
async def test_a_topic_that_does_not_exist_lists_nothing(
    kafka_bootstrap: str, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--bootstrap", kafka_bootstrap, "--prefix", topics.prefix]
    assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out == ""
