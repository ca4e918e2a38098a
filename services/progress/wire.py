"""The worker's messages on the wire, without pydantic on the hot path: statement envelopes
parsed and checked as :class:`~shared.envelope.Envelope` does, the ids of the updates and the
``progress.updates`` envelopes encoded as the models would.

Idempotency: each ProgressUpdate's ``event_id`` is ``uuid5(statement event id | competency)``,
so publishing again after a crash gives the same ids.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson

from shared.envelope import PROGRESS_UPDATE_V1, Envelope, message_key
from shared.ids import uuid5, uuid5_text

#: namespace of progress update event ids: uuid5 of ``"<statement event id>|<competency>"``
UPDATE_NAMESPACE: Final = uuid.UUID("b3c1e0a4-5f3d-5e8a-9c2b-7d41f6a9e812")
_NAMESPACE_BYTES: Final = UPDATE_NAMESPACE.bytes


def update_id_text(statement_event_id: str, competency: str | None) -> str:
    """The text of :func:`update_event_id` for a statement event id in the canonical form
    (``str(uuid)``): what the update's envelope carries, with no :class:`uuid.UUID` built."""
    return uuid5_text(_NAMESPACE_BYTES, f"{statement_event_id}|{competency or ''}")


def update_event_id(statement_event_id: uuid.UUID, competency: str | None) -> uuid.UUID:
    """``uuid.uuid5(UPDATE_NAMESPACE, f"{statement_event_id}|{competency or ''}")``."""
    return uuid5(_NAMESPACE_BYTES, f"{statement_event_id}|{competency or ''}")


class EnvelopeView(Protocol):
    """What the processor reads of a statement envelope: an :class:`Envelope`, or the
    :class:`StatementEnvelope` that :func:`parse_statement_envelope` builds without pydantic."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def tenant(self) -> str: ...
    @property
    def learner_key(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def key(self) -> bytes: ...


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build (hot path)
class StatementEnvelope:
    """An envelope whose fields passed the checks :class:`Envelope` makes (same values); the
    event id is kept as its canonical text (what the worker uses) and parsed only on demand."""

    schema_: str
    event_text: str  # ``str(event_id)``: lowercase, hyphenated
    tenant: str
    learner_key: str
    occurred_at: datetime
    recorded_at: datetime
    payload: dict[str, Any]
    key: bytes

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self.event_text)


def event_id_of(env: EnvelopeView) -> tuple[str, bytes]:
    """The envelope's event id as ``(str(uuid), uuid.bytes)``, without a :class:`uuid.UUID`
    for a :class:`StatementEnvelope`."""
    if type(env) is StatementEnvelope:
        text = env.event_text
        return text, bytes.fromhex(text.replace("-", ""))
    event_id = env.event_id
    return str(event_id), event_id.bytes


_ENVELOPE_KEYS: Final = frozenset(
    ("schema", "event_id", "tenant", "learner_key", "occurred_at", "recorded_at", "payload")
)
# the shapes the fast path takes; anything else goes through the pydantic model, which then
# accepts it (a rarer spelling) or says exactly what is wrong
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # shared.envelope.TENANT_PATTERN
_LEARNER = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
# checked learners ((tenant, learner_key) -> message key) and parsed times; each emptied when
# full (a bound, not an eviction policy: a miss only costs the check again). Times repeat
# only within an ingest batch (its ``recorded_at``; event times are all different), so their
# cache is small: a large one only held every event's time until it was emptied (memory that
# grew for minutes in the soak run for no hits)
_CACHE_MAX: Final = 100_000
_TIMES_MAX: Final = 1_024
_KEYS: dict[tuple[str, str], bytes] = {}
_TIMES: dict[str, datetime] = {}


def _utc(text: Any) -> datetime | None:
    if type(text) is not str:
        return None
    value = _TIMES.get(text)
    if value is None:
        if _TIME.fullmatch(text) is None:
            return None
        try:
            value = datetime.fromisoformat(text).astimezone(UTC)
        except ValueError:
            return None
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        _TIMES[text] = value
    return value


def _key(tenant: Any, learner: Any) -> bytes | None:
    if type(tenant) is not str or type(learner) is not str:
        return None
    key = _KEYS.get((tenant, learner))
    if key is None:
        if _TENANT.fullmatch(tenant) is None or _LEARNER.fullmatch(learner) is None:
            return None
        key = message_key(tenant, learner)
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        _KEYS[(tenant, learner)] = key
    return key


def _fast_envelope(raw: bytes | str, accepted: frozenset[str]) -> StatementEnvelope | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or data.keys() != _ENVELOPE_KEYS:
        return None
    schema, event_id, payload = data["schema"], data["event_id"], data["payload"]
    ok = (
        type(schema) is str
        and schema in accepted
        and type(payload) is dict
        and type(event_id) is str
        and _UUID.fullmatch(event_id) is not None
    )
    key = _key(data["tenant"], data["learner_key"]) if ok else None
    occurred, recorded = _utc(data["occurred_at"]), _utc(data["recorded_at"])
    if key is None or occurred is None or recorded is None:
        return None
    return StatementEnvelope(
        schema,
        event_id.lower(),  # the hyphenated form (checked above): str(UUID(event_id))
        data["tenant"],
        data["learner_key"],
        occurred,
        recorded,
        payload,
        key,
    )


def parse_statement_envelope(
    raw: bytes | str, accepted: frozenset[str]
) -> StatementEnvelope | Envelope:
    """:meth:`Envelope.parse` for the worker's hot path: the envelope is decoded once (orjson)
    and checked field by field as the model does (keys exactly, schema accepted, uuid, tenant
    and learner key patterns, aware times, payload an object), without building a model.
    Anything the fast checks do not take is handed to :meth:`Envelope.parse`, so the result
    (value or :class:`InvalidMessageError` / :class:`UnknownSchemaError`) is the model's."""
    fast = _fast_envelope(raw, accepted)
    return fast if fast is not None else Envelope.parse(raw, accepted)


def encode_update(
    env: EnvelopeView, event_id: uuid.UUID | str, payload: Mapping[str, Any]
) -> bytes:
    """The ``skillstream.progress_update.v1`` envelope of ``payload``, encoded directly: the
    payload is built with the model's fields, order and JSON types (a unit test checks it
    against the model) and the other fields come from a checked envelope, so validating them
    again (``Envelope.new``) would only cost time on the hot path. ``event_id``: a
    :class:`uuid.UUID` or its canonical text (orjson writes both the same)."""
    return orjson.dumps(
        {
            "schema": PROGRESS_UPDATE_V1,
            "event_id": event_id,
            "tenant": env.tenant,
            "learner_key": env.learner_key,
            "occurred_at": env.occurred_at,
            "recorded_at": env.recorded_at,
            "payload": payload,
        }
    )
