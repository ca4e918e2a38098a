from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from shared.envelope import PROGRESS_UPDATE_V1, STATEMENT_V1, Envelope, message_key
from shared.errors import InvalidMessageError, UnknownSchemaError, is_retriable

KEY = "0123456789abcdef0123456789abcdef"


def make(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "tenant": "acme",
        "learner_key": KEY,
        "occurred_at": datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        "payload": {"statement": {"id": "x"}},
    }
    fields.update(overrides)
    return Envelope.new(STATEMENT_V1, **fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    env = make()
    back = Envelope.parse(env.to_bytes(), {STATEMENT_V1})
    assert back == env
    doc = orjson.loads(env.to_bytes())
    assert doc["schema"] == STATEMENT_V1
    assert set(doc) == {
        "schema",
        "event_id",
        "tenant",
        "learner_key",
        "occurred_at",
        "recorded_at",
        "payload",
    }


def test_times_are_normalised_to_utc() -> None:
    env = make()
    assert env.occurred_at == datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    assert env.occurred_at.utcoffset() == timedelta(0)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        make(occurred_at=datetime(2026, 3, 1, 9, 30))  # noqa: DTZ001 - the point of the test


def test_key_is_tenant_and_learner() -> None:
    env = make()
    assert env.key == f"acme|{KEY}".encode() == message_key("acme", KEY)


def test_unknown_schema_version_is_refused_not_guessed() -> None:
    raw = make().to_bytes().replace(b"statement.v1", b"statement.v2")
    with pytest.raises(UnknownSchemaError) as info:
        Envelope.parse(raw, {STATEMENT_V1})
    assert not is_retriable(info.value)


def test_schema_not_accepted_by_this_reader() -> None:
    with pytest.raises(UnknownSchemaError):
        Envelope.parse(make().to_bytes(), {PROGRESS_UPDATE_V1})


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"schema": "skillstream.statement.v1"}',
    ],
)
def test_malformed_envelopes_are_invalid_messages(raw: bytes) -> None:
    with pytest.raises(InvalidMessageError):
        Envelope.parse(raw, {STATEMENT_V1})


def test_extra_fields_are_refused() -> None:
    doc = orjson.loads(make().to_bytes())
    doc["surprise"] = 1
    with pytest.raises(InvalidMessageError, match="surprise"):
        Envelope.parse(orjson.dumps(doc), {STATEMENT_V1})


@pytest.mark.parametrize("tenant", ["", "Acme", "a|b", "a" * 64])
def test_bad_tenants_are_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant"):
        make(tenant=tenant)


def test_envelope_is_frozen() -> None:
    env = make()
    with pytest.raises(ValueError, match="frozen"):
        env.tenant = "other"  # type: ignore[misc]


def test_event_id_given_is_kept() -> None:
    event_id = uuid.uuid4()
    assert make(event_id=event_id).event_id == event_id
