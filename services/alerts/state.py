"""Detector state kept per learner in the Faust table (one JSON value per ``tenant|learner``),
and the signals the detectors emit. Pure data, no I/O.

The state is keyed like the topic (``"<tenant>|<learner_key>"``), so the table is co-partitioned
with ``progress.updates`` by construction; per-competency state lives inside the learner's value.

A redelivered update is recognised by the source position kept in the learner's value (the
partition and offset on ``progress.updates`` of the last update applied: a learner's updates are
all on one partition, in order), however many were redelivered -- Faust commits offsets every
few seconds, so a worker restarted after ``kill -9`` gets back far more than the ring of
``SEEN_EVENTS`` recent event ids covers. The ring stays for updates whose position is unknown.
Values written before the position was kept load without one (``None``).

The stored state (:class:`Attempt`, :class:`CompetencyState`, :class:`LearnerState`) is read
tolerantly: fields this version does not know are dropped, not refused. A value written by a
later version (a rollback after an upgrade that added a field, as ``stall`` was added) then
loads, and is written back without that field; refusing it would stop the worker at the first
such learner. So a field, once added, keeps its meaning: changing one is a new field. Events
and signals stay strict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.alert_events import AlertKind, Severity, Support

RECENT_ATTEMPTS = 20  # the longest window any detector looks at
TRAJECTORY_POINTS = 20
SEEN_EVENTS = 64  # event ids remembered to skip a redelivered update (no source offset known)


#: stored state: fields of a later version are dropped (see the module's docstring)
_STORED: Final = ConfigDict(extra="ignore")


class Attempt(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    statement_id: str
    at: datetime
    correct: bool
    duration_s: float | None = None
    hints: int = 0  # hints asked since the previous attempt on this competency
    mastery: float | None = None  # after the attempt
    predicted: float | None = None  # the model's chance of a correct answer, before it


class CompetencyState(BaseModel):
    model_config = _STORED

    attempts: int = 0
    correct_streak: int = 0
    wrong_streak: int = 0
    mastered: bool = False  # by the model or by ``correct_in_a_row`` right answers in a row
    model_mastered: bool = False  # progress reported ``mastered`` at least once
    peak: float | None = None
    peak_at: datetime | None = None
    last_hints: int = 0  # the cumulative hint count last reported by progress
    hints_pending: int = 0  # hints since the last attempt
    recent: list[Attempt] = Field(default_factory=list)
    trajectory: list[tuple[datetime, float]] = Field(default_factory=list)
    active: list[AlertKind] = Field(default_factory=list)  # raised and not cleared
    #: the wheel-spinning stall filter's vector (:mod:`services.alerts.stall`); empty until the
    #: first attempt under method ``stall_probability``
    stall: list[float] = Field(default_factory=list)
    #: the attempts that vector has weighed since it started or last forgot a stall
    stall_attempts: int = 0


class LearnerState(BaseModel):
    model_config = _STORED

    last_activity: datetime | None = None
    programme: str | None = None
    business_unit: str | None = None
    competencies: dict[str, CompetencyState] = Field(default_factory=dict)
    seen: list[str] = Field(default_factory=list)  # recent event ids, oldest first
    #: partition and offset on the source topic of the last update applied (None: unknown,
    #: e.g. a value written before they were kept)
    partition: int | None = None
    offset: int | None = None

    def applied(self, partition: int | None, offset: int | None) -> bool:
        """True when the update at ``partition``/``offset`` is already in this state (a
        redelivery at or below the last offset applied on the same partition)."""
        if partition is None or offset is None or self.offset is None:
            return False
        return partition == self.partition and offset <= self.offset

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> LearnerState:
        return cls() if raw is None else cls.model_validate_json(raw)


class StateEncoder:
    """:meth:`LearnerState.to_bytes`, with each competency's JSON reused while the learner's
    state holds the same competency object: the detectors copy on write (a new state shares
    every competency the update did not touch), so a learner's value is mostly the JSON of the
    last batch. Per learner key, bounded (the least recently written learner goes first)."""

    def __init__(self, max_learners: int) -> None:
        if max_learners < 1:
            raise ValueError("max_learners must be positive")
        self._max = max_learners
        self._parts: dict[bytes, dict[str, tuple[CompetencyState, bytes]]] = {}

    def encode(self, key: bytes, state: LearnerState) -> bytes:
        parts = self._parts.pop(key, None)  # re-inserted last: the oldest learners go first
        if parts is None:
            if len(self._parts) >= self._max:
                del self._parts[next(iter(self._parts))]
            parts = {}
        fresh: dict[str, tuple[CompetencyState, bytes]] = {}
        for cid, comp in state.competencies.items():
            hit = parts.get(cid)
            if hit is None or hit[0] is not comp:
                hit = (comp, orjson.dumps(cid) + b":" + comp.model_dump_json().encode())
            fresh[cid] = hit
        self._parts[key] = fresh
        head = state.model_dump_json(exclude={"competencies"}).encode()
        body = b",".join(part for _, part in fresh.values())
        return head[:-1] + b',"competencies":{' + body + b"}}"


class Signal(BaseModel):
    """What a detector concluded from one event: the condition holds (``raise``, which opens
    an alert or adds evidence to the open one) or no longer holds (``clear``: auto-resolve)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AlertKind
    action: Literal["raise", "clear"]
    competency: str | None = None
    programme: str | None = None
    business_unit: str | None = None
    severity: Severity = "medium"
    support: Support = "technical"
    at: datetime  # event time the condition started or cleared
    cooldown_hours: float = 0.0
    evidence: dict[str, Any] = Field(default_factory=dict)
