"""The worker's hot path against the models it stands in for: the envelope parsed without
pydantic, the update payloads and envelopes encoded without pydantic, the caching partitioner
and the cache of decoded learner records."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from services.ingest.handlers import authority_for, prepare
from services.progress import repository as repo
from services.progress.agents import table_reader
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.metrics import ProgressMetrics
from services.progress.outcome import CompetencyRow, DailyRow, UpdateOut
from services.progress.pipeline import ACCEPTED, Pipeline
from services.progress.state import LearnerRecord, decode, encode
from services.progress.wire import (
    UPDATE_NAMESPACE,
    StatementEnvelope,
    event_id_of,
    parse_statement_envelope,
    update_event_id,
    update_id_text,
)
from shared.batching import CachingPartitioner
from shared.envelope import PROGRESS_UPDATE_V1, STATEMENT_V1, Envelope
from shared.errors import InvalidMessageError, UnknownSchemaError
from shared.events import ProgressUpdate
from shared.streaming import close_unused_loops, make_faust_app
from shared.xapi import XapiVersion, parse_statement
from tests.unit.progress.samples import COURSE, SALT, T0, framework, prepared
from tools.simulator import Config, simulate
from tools.simulator.academy import framework_of


def _model_bytes(env: Envelope, out: UpdateOut) -> bytes:
    """What the pydantic path encoded: the payload validated by the model, dumped as JSON."""
    payload = ProgressUpdate.model_validate(out.payload).model_dump(mode="json")
    return orjson.dumps(
        {
            "schema": PROGRESS_UPDATE_V1,
            "event_id": out.event_id,
            "tenant": env.tenant,
            "learner_key": env.learner_key,
            "occurred_at": env.occurred_at,
            "recorded_at": env.recorded_at,
            "payload": payload,
        }
    )


def _check_updates(env: Envelope, updates: tuple[UpdateOut, ...]) -> None:
    for out in updates:
        assert orjson.dumps(out.payload) == orjson.dumps(out.update.model_dump(mode="json"))
        assert out.value == _model_bytes(env, out)
        parsed = Envelope.parse(out.value, {PROGRESS_UPDATE_V1})
        assert parsed.event_id == out.event_id
        assert ProgressUpdate.model_validate(parsed.payload) == out.update


def test_update_bytes_equal_the_models_for_simulated_statements() -> None:
    sim = simulate(Config(seed=3, learners=12, days=6))
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework_of(sim.academy, t) for t in sim.academy.tenants])
    proc = Processor(registry, 8)
    records: dict[bytes, LearnerRecord] = {}
    kinds: set[str] = set()
    for i, event in enumerate(sim.events):
        stmt = parse_statement(event.statement, version=XapiVersion.V1_0_3)
        p = prepare(
            stmt,
            tenant=event.tenant,
            version=XapiVersion.V1_0_3,
            stored=T0 + timedelta(seconds=i),
            authority=authority_for(event.tenant, "lms1"),
            salt=SALT,
        )
        model = Envelope.parse(p.envelope, ACCEPTED)
        fast = parse_statement_envelope(p.envelope, ACCEPTED)
        assert isinstance(fast, StatementEnvelope)
        for name in ("event_id", "tenant", "learner_key", "occurred_at", "recorded_at"):
            assert getattr(fast, name) == getattr(model, name), name
        assert fast.payload == model.payload
        assert fast.key == model.key
        record = records.get(p.key, LearnerRecord())
        out = proc.process(fast, record)
        again = proc.process(model, record)  # the model gives the same outcome
        assert out == again
        _check_updates(model, out.updates)
        if i % 7 == 0:  # a redelivery: rebuilt from the state, same bytes as the model's
            _check_updates(model, proc.process(fast, out.record).updates)
        records[p.key] = out.record
        kinds.add(out.evidence)
    assert kinds >= {"attempt", "attendance", "activity"}


COMPETENCY_COLUMNS = (
    "tenant",
    "learner_key",
    "competency",
    "framework",
    "framework_version",
    "mastery",
    "mastered",
    "attempts",
    "correct_total",
    "correct_streak",
    "wrong_streak",
    "hints",
    "time_on_task_s",
    "first_event_at",
    "last_event_at",
    "mastered_at",
)


def test_projection_rows_encode_as_objects_of_the_table_columns() -> None:
    """The rows go to PostgreSQL as one JSON array of objects per batch (``json_to_recordset``):
    each row an object of its table's columns, in order, with its values as orjson writes them
    (the rows keep a ``__dict__`` for speed: nothing else may show up in their JSON)."""
    rows: list[CompetencyRow] = []
    daily: list[DailyRow] = []
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework()])
    proc = Processor(registry, 8)
    record = LearnerRecord()
    for i, (activity, ok) in enumerate([("q1", True), ("q1", False), ("video", None)]):
        p = prepared(activity=activity, success=ok, parent=COURSE, at=T0 + timedelta(minutes=i))
        out = proc.process(parse_statement_envelope(p.envelope, ACCEPTED), record)
        record = out.record
        rows += out.competencies
        daily += out.daily
    assert {r.competency for r in rows} == {"py.basics", "py.loops"}
    assert any(r.mastered_at is None for r in rows)
    want = [dict(zip(COMPETENCY_COLUMNS, r.values(), strict=True)) for r in rows]
    assert repo._json(rows) == orjson.dumps(want).decode()
    want_daily = [
        {"tenant": d.tenant, "learner_key": d.learner_key, "competency": d.competency,
         "day": d.day, "mastery": d.mastery}
        for d in daily
    ]  # fmt: skip
    assert repo._json(daily) == orjson.dumps(want_daily).decode()


def test_update_bytes_equal_the_models_without_a_framework_and_with_weights() -> None:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework()])
    proc = Processor(registry, 8)
    early = T0.replace(year=2025)  # before the framework's effective time
    for kwargs in (
        {"at": early, "duration": "PT1M30S"},
        {"activity": "other", "parent": COURSE, "success": False},
        {"activity": "video", "success": None, "duration": "P1DT2H"},
        {"success": True, "duration": "P1Y"},
    ):
        env = Envelope.parse(prepared(**kwargs).envelope, ACCEPTED)
        out = proc.process(env, LearnerRecord())
        _check_updates(env, out.updates)


def _envelope(**changes: Any) -> bytes:
    data = orjson.loads(prepared().envelope)
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data)


_DROP = object()
UUID_UPPER = "BF8C9746-5C69-5165-9EE5-6725CFFFF0A9"


@pytest.mark.parametrize(
    "raw",
    [
        _envelope(),
        _envelope(event_id=UUID_UPPER),
        _envelope(event_id=UUID_UPPER.replace("-", "")),
        _envelope(event_id="not-a-uuid"),
        _envelope(occurred_at="2026-02-02T10:00:00+02:00"),
        _envelope(occurred_at="2026-02-02T08:00:00.123456Z"),
        _envelope(occurred_at="2026-02-02T08:00:00.1Z"),
        _envelope(occurred_at="2026-02-02T08:00:00"),  # no timezone
        _envelope(occurred_at="2026-02-02"),
        _envelope(occurred_at="2026-02-30T08:00:00Z"),
        _envelope(occurred_at="2026-02-02T08:00:60Z"),
        _envelope(occurred_at=1770019200),
        _envelope(recorded_at="2026-02-02T08:00:00-05:30"),
        _envelope(tenant="Acme"),
        _envelope(tenant="acme\n"),
        _envelope(tenant=""),
        _envelope(learner_key="A" * 32),
        _envelope(learner_key="a" * 31),
        _envelope(learner_key=7),
        _envelope(schema="skillstream.statement.v2"),
        _envelope(schema="nope"),
        _envelope(payload=[]),
        _envelope(payload=_DROP),
        _envelope(extra=1),
        b"[]",
        b"{not json",
        b"",
    ],
)
def test_fast_envelope_parse_agrees_with_the_model(raw: bytes) -> None:
    expected: Envelope | Exception
    try:
        expected = Envelope.parse(raw, ACCEPTED)
    except (InvalidMessageError, UnknownSchemaError) as exc:
        expected = exc
    got: StatementEnvelope | Envelope | Exception
    try:
        got = parse_statement_envelope(raw, ACCEPTED)
    except (InvalidMessageError, UnknownSchemaError) as exc:
        got = exc
    if isinstance(expected, Exception):
        assert type(got) is type(expected)
        assert str(got) == str(expected)
        return
    assert not isinstance(got, Exception)
    for name in ("event_id", "tenant", "learner_key", "occurred_at", "recorded_at", "payload"):
        assert getattr(got, name) == getattr(expected, name), name
    assert got.occurred_at.utcoffset() == timedelta(0)
    assert got.recorded_at.utcoffset() == timedelta(0)
    assert got.key == expected.key


def test_update_event_ids_are_uuid5() -> None:
    for competency in (None, "", "py.basics", "données"):
        for _ in range(50):
            event_id = uuid.uuid4()
            expected = uuid.uuid5(UPDATE_NAMESPACE, f"{event_id}|{competency or ''}")
            assert update_event_id(event_id, competency) == expected


def test_caching_partitioner_picks_the_default_partitions() -> None:
    default, cached = DefaultPartitioner(), CachingPartitioner(max_keys=50)
    for n in (1, 2, 4, 12):
        partitions = list(range(n))
        for i in range(300):  # beyond the bound: the cache is emptied and refilled
            key = f"acme|{i:032x}".encode()
            assert cached(key, partitions, partitions) == default(key, partitions, partitions)
    assert cached(None, [0, 1], [1]) == 1


async def _no_send(*_: Any) -> None:
    return None


def test_decoded_records_are_reused_only_for_the_same_table_value() -> None:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework()])
    proc = Processor(registry, 8)
    env = Envelope.parse(prepared().envelope, {STATEMENT_V1})
    record = proc.process(env, LearnerRecord()).record
    table: dict[bytes, bytes] = {}
    pipeline = Pipeline(
        table=table,
        processor=proc,
        projector=None,  # type: ignore[arg-type]
        metrics=ProgressMetrics(CollectorRegistry()),
        send=_no_send,
        send_many=_no_send,
        write_entries=_no_send,
        flush_producer=_no_send,
        updates_topic="u",
        deadletter_topic="d",
        batch_max=10,
        within=1.0,
        decoded_max=2,
    )
    key = env.key
    assert pipeline.record_of(key) == LearnerRecord()
    table[key] = encode(record)
    first = pipeline.record_of(key)
    assert first == record
    assert pipeline.record_of(key) is first  # the same value object: decoded once
    table[key] = encode(LearnerRecord())  # another writer (e.g. a recovery): decoded again
    assert pipeline.record_of(key) == LearnerRecord()
    for i in range(3):  # bounded
        other = f"acme|{i:032x}".encode()
        table[other] = encode(record)
        assert pipeline.record_of(other) == record
    assert len(pipeline._decoded) == 2


def test_packed_cache_holds_only_live_states_and_matches_a_cold_encoding() -> None:
    """Each learner record caches the packed bytes of its competencies (an entry is written with
    every competency, an event changes one): the cache must give the bytes a fresh packing gives,
    and hold one entry per live competency state -- a superseded state is replaced, not kept
    (a process-wide cache keyed by object ids kept old versions: memory grew with every event)."""
    sim = simulate(Config(seed=5, learners=8, days=6))
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework_of(sim.academy, t) for t in sim.academy.tenants])
    proc = Processor(registry, 8)
    records: dict[bytes, LearnerRecord] = {}
    for i, event in enumerate(sim.events):
        stmt = parse_statement(event.statement, version=XapiVersion.V1_0_3)
        p = prepare(
            stmt,
            tenant=event.tenant,
            version=XapiVersion.V1_0_3,
            stored=T0 + timedelta(seconds=i),
            authority=authority_for(event.tenant, "lms1"),
            salt=SALT,
        )
        env = parse_statement_envelope(p.envelope, ACCEPTED)
        assert isinstance(env, StatementEnvelope)
        record = proc.process(env, records.get(p.key, LearnerRecord())).record
        raw = encode(record)
        assert raw == encode(replace(record, packed={}))
        assert record.packed.keys() == record.competencies.keys()
        assert all(record.packed[cid][0] is c for cid, c in record.competencies.items())
        if i % 5 == 0:  # as after a table read: the decoded record's cache is the raw slices
            record = decode(raw)
            assert {cid: c for cid, (c, _) in record.packed.items()} == record.competencies
            assert encode(record) == raw == encode(replace(record, packed={}))
        records[p.key] = record
    assert sum(len(r.competencies) for r in records.values()) > 20  # the test saw real state


def test_table_reader_reads_what_the_table_holds() -> None:
    """The worker reads its memory:// table's dict directly (Faust's ``Table.get`` costs
    several Python calls per event): same values as ``table.get``, written either way."""
    app = make_faust_app("reader", bootstrap="127.0.0.1:9", topic_prefix="tunit.", partitions=2)
    table = app.Table("learners", default=None, key_type=bytes, value_type=bytes, partitions=2)
    read = table_reader(app, table)
    table.data[b"acme|a"] = b"one"  # as Output.write_entries writes entries
    table.data[b"acme|b"] = b"two"
    for key in (b"acme|a", b"acme|b", b"acme|missing"):
        assert read(key) == table.get(key)
    assert read(b"acme|a") == b"one"
    assert read(b"acme|missing") is None
    table.data[b"acme|a"] = b"three"  # a later write (or a recovery's) is seen at once
    assert read(b"acme|a") == b"three"
    close_unused_loops(app)


def test_event_ids_as_text_and_bytes_agree_with_the_uuid() -> None:
    env = Envelope.parse(_envelope(event_id=UUID_UPPER), ACCEPTED)
    fast = parse_statement_envelope(_envelope(event_id=UUID_UPPER), ACCEPTED)
    assert isinstance(fast, StatementEnvelope)
    expected = (str(env.event_id), env.event_id.bytes)
    assert event_id_of(fast) == event_id_of(env) == expected
    assert fast.event_text == UUID_UPPER.lower()
    for competency in (None, "py.basics"):
        text = update_id_text(expected[0], competency)
        assert text == str(uuid.uuid5(UPDATE_NAMESPACE, f"{env.event_id}|{competency or ''}"))
