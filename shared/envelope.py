"""The envelope every topic after ingest carries (see DESIGN.md, "Envelope").

Readers accept only the schemas they know (name *and* version) and dead-letter the rest rather
than guess. Adding optional payload fields is compatible; anything else is a new version.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidMessageError, UnknownSchemaError

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SCHEMA_PATTERN = r"^skillstream\.[a-z][a-z0-9_.]*\.v[0-9]+$"

# The schemas known today; each service lists the ones it reads.
STATEMENT_V1 = "skillstream.statement.v1"
PROGRESS_UPDATE_V1 = "skillstream.progress_update.v1"
ALERT_EVENT_V1 = "skillstream.alert_event.v1"


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps in envelopes carry a timezone")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


class Envelope(BaseModel):
    """One event on a Skillstream topic. Frozen: an event, once made, does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: str = Field(alias="schema", pattern=SCHEMA_PATTERN)
    event_id: uuid.UUID
    tenant: str = Field(pattern=TENANT_PATTERN)
    learner_key: str = Field(pattern=r"^[0-9a-f]{32}$")
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime
    payload: dict[str, Any]

    @classmethod
    def new(
        cls,
        schema: str,
        *,
        tenant: str,
        learner_key: str,
        occurred_at: datetime,
        payload: dict[str, Any],
        event_id: uuid.UUID | None = None,
        recorded_at: datetime | None = None,
    ) -> Self:
        return cls.model_validate(
            {
                "schema": schema,
                "event_id": event_id or uuid.uuid4(),
                "tenant": tenant,
                "learner_key": learner_key,
                "occurred_at": occurred_at,
                "recorded_at": recorded_at or datetime.now(UTC),
                "payload": payload,
            }
        )

    @property
    def key(self) -> bytes:
        """The Kafka key: ``"<tenant>|<learner_key>"``."""
        return message_key(self.tenant, self.learner_key)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def parse(cls, raw: bytes | str, accepted: frozenset[str] | set[str]) -> Self:
        """Decode ``raw``; raise :class:`InvalidMessageError` or :class:`UnknownSchemaError`."""
        try:
            env = cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "$"
            raise InvalidMessageError(f"not a valid envelope: {where}: {first['msg']}") from None
        if env.schema_ not in accepted:
            raise UnknownSchemaError(f"schema {env.schema_!r} is not one of {sorted(accepted)}")
        return env


def message_key(tenant: str, learner_key: str) -> bytes:
    return f"{tenant}|{learner_key}".encode()
