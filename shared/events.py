"""Payloads of the envelopes on the topics after ingest (DESIGN.md, "Envelope").

The envelope (``shared.envelope.Envelope``) carries tenant, learner key, event id and times; the
models here are its ``payload`` for each schema. They are frozen and refuse unknown fields;
adding an *optional* field is a compatible change, anything else is a new schema version.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import PROGRESS_UPDATE_V1

EvidenceKind = Literal["attempt", "hint", "completion", "attendance", "activity"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgressUpdate(_Payload):
    """One learner's state after one piece of evidence, on ``progress.updates``
    (schema ``skillstream.progress_update.v1``, key ``"<tenant>|<learner_key>"``).

    ``competency`` is ``None`` for evidence that maps to no competency: it still tells the alerts
    service that the learner was active. ``evidence`` says what the statement was: only an
    ``attempt`` (an answer to an item or assessment, with success or a score) moves mastery and
    the attempt counters and streaks; a ``completion`` (``completed``, or ``passed`` /
    ``failed`` on a course or module -- even with a score), ``attendance``, ``hint`` or other
    ``activity`` updates recency and time on task only. The envelope's ``occurred_at`` is the
    statement's event time, which drives every stall rule (replays give the same alerts).
    """

    statement_id: uuid.UUID
    evidence: EvidenceKind
    competency: str | None = None
    framework: str | None = None
    framework_version: int | None = Field(default=None, ge=1)
    programme: str | None = None
    business_unit: str | None = None
    mode: Literal["practice", "assessment"] | None = None
    session_id: str | None = None  # the live session attended, for "attendance"
    correct: bool | None = None
    duration_s: float | None = Field(default=None, ge=0)
    predicted_correct: float | None = Field(default=None, ge=0, le=1)  # before the evidence
    mastery_before: float | None = Field(default=None, ge=0, le=1)
    mastery_after: float | None = Field(default=None, ge=0, le=1)
    mastered: bool = False
    attempts: int = Field(default=0, ge=0)
    correct_total: int = Field(default=0, ge=0)
    correct_streak: int = Field(default=0, ge=0)
    wrong_streak: int = Field(default=0, ge=0)
    hints: int = Field(default=0, ge=0)
    time_on_task_s: float = Field(default=0.0, ge=0)


SCHEMAS: dict[str, type[_Payload]] = {PROGRESS_UPDATE_V1: ProgressUpdate}
