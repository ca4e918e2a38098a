"""The worker's state and its compact byte encoding (the Faust table's values).

Layout: one table entry per learner, keyed like the source topic (``"<tenant>|<learner_key>"``),
holding the learner's activity recency, the source offset of the last statement applied and a
ring of the most recent statement event ids (both to recognise a redelivered statement) and one
:class:`CompetencyState` per competency the learner has evidence for -- i.e. the state per
(tenant, learner, competency) lives inside its learner's entry. Keying by the source key keeps
the changelog co-partitioned with the source topic (the table uses the producer's partitioner on
the same key), costs one changelog write per statement whatever the number of competencies it
touches, and lets the duplicate check and all updates of one statement be one atomic write.

Encoding (little-endian ``struct``; times as integer microseconds since the epoch, exact):

* header ``<BIqqHH``: format version, events, first/last event time, ring length, competencies
* (format 2) ``<q``: the source offset of the last statement applied (-1: none)
* (format 3) ``<dd``: the learner's surprise and its weight (``mastery.add_surprise``)
* the ring: 16 bytes per event id, oldest first
* per competency: id length (1 byte) + UTF-8 id, then ``<Bd5I2qddq`` (69 bytes): model kind,
  log-odds or Elo ability, attempts, correct, correct streak, wrong streak, hints, last and
  first event time, time on task, last prediction (NaN: none), first time mastered
"""

from __future__ import annotations

import math
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from services.progress.mastery import EloState, MasteryState

FORMAT_VERSION: Final = 3  # 1: no offset (read as -1); 1 and 2: no surprise (read as 0)
_HEADER = struct.Struct("<BIqqHH")
_OFFSET = struct.Struct("<q")
_SURPRISE = struct.Struct("<dd")
_COMP = struct.Struct("<Bd5I2qddq")
_NONE: Final = -(2**63)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BKT, _ELO = 0, 1


def _us(value: datetime | None) -> int:
    if value is None:
        return _NONE
    d = value - _EPOCH  # exact integer arithmetic (``// timedelta(microseconds=1)`` is slower)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _dt(value: int) -> datetime | None:
    return None if value == _NONE else _EPOCH + timedelta(microseconds=value)


# never changed in place (the records that follow from one are new objects, and the packed
# cache relies on it), but not frozen: a frozen dataclass costs several times more to build,
# and the worker builds these per event
@dataclass(slots=True)
class CompetencyState:
    model: MasteryState | EloState
    hints: int = 0
    first_event_at: datetime | None = None
    mastered_at: datetime | None = None  # first time mastery reached the threshold


@dataclass(slots=True)
class LearnerRecord:
    events: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    recent: tuple[bytes, ...] = ()  # event ids, oldest first
    competencies: dict[str, CompetencyState] = field(default_factory=dict)
    #: offset on the source topic of the last statement applied (a learner's statements are all
    #: on one partition, in order): a redelivered one is at or below it, however many statements
    #: were redelivered (the ring only covers the last ``recent_ids``). -1: none.
    offset: int = -1
    #: the packed bytes of each competency's state, by competency id, with the state they were
    #: packed from: the entry is written once per batch with every competency, of which an event
    #: changes one, so the others are reused. Shared (it is a cache, not state) by the records
    #: that follow from this one, so a superseded state is replaced here and freed: the cache
    #: holds one entry per live competency state, never old versions.
    packed: dict[str, tuple[CompetencyState, bytes]] = field(
        default_factory=dict, compare=False, repr=False
    )
    #: the learner's surprise (sum of ``correct - predicted`` over every attempt, weighted) and
    #: its weight: the learner's ability, for frameworks that use it (``mastery.py``)
    surprise: float = 0.0
    surprise_weight: float = 0.0

    def seen(self, event_id: uuid.UUID) -> bool:
        return event_id.bytes in self.recent

    def after(
        self,
        event_id: bytes,
        at: datetime,
        keep: int,
        competencies: dict[str, CompetencyState] | None = None,
        offset: int | None = None,
        *,
        surprise: tuple[float, float] | None = None,
    ) -> LearnerRecord:
        """The record once the statement ``event_id`` (``uuid.bytes``), of event time ``at``, is
        applied: one more event, its id in the ring (the last ``keep``), its ``competencies``,
        source ``offset`` and ``surprise`` with its weight (each by default unchanged). One
        object per statement
        (``dataclasses.replace`` or a chain of copies costs more than the rest of this)."""
        recent = (*self.recent, event_id)[-keep:]
        first = at if self.first_event_at is None else min(self.first_event_at, at)
        last = at if self.last_event_at is None else max(self.last_event_at, at)
        return LearnerRecord(
            self.events + 1,
            first,
            last,
            recent,
            self.competencies if competencies is None else competencies,
            self.offset if offset is None else offset,
            self.packed,
            *((self.surprise, self.surprise_weight) if surprise is None else surprise),
        )


def _pack(cid: str, c: CompetencyState) -> bytes:
    name = cid.encode()
    m = c.model
    kind, value = (_BKT, m.log_odds) if isinstance(m, MasteryState) else (_ELO, m.ability)
    prediction = math.nan if m.last_prediction is None else m.last_prediction
    return (
        bytes((len(name),))
        + name
        + _COMP.pack(
            kind,
            value,
            m.attempts,
            m.correct,
            m.correct_streak,
            m.wrong_streak,
            c.hints,
            _us(m.last_event_at),
            _us(c.first_event_at),
            m.time_on_task_s,
            prediction,
            _us(c.mastered_at),
        )
    )


def encode(record: LearnerRecord) -> bytes:
    parts = [
        _HEADER.pack(
            FORMAT_VERSION,
            record.events,
            _us(record.first_event_at),
            _us(record.last_event_at),
            len(record.recent),
            len(record.competencies),
        ),
        _OFFSET.pack(record.offset),
        _SURPRISE.pack(record.surprise, record.surprise_weight),
        *record.recent,
    ]
    packed = record.packed
    for cid, c in record.competencies.items():
        # the others are the same (immutable) objects as when last packed
        hit = packed.get(cid)
        if hit is None or hit[0] is not c:
            hit = packed[cid] = (c, _pack(cid, c))
        parts.append(hit[1])
    if len(packed) > len(record.competencies):  # a competency no longer held: forget it
        for cid in packed.keys() - record.competencies.keys():
            del packed[cid]
    return b"".join(parts)


def decode(raw: bytes | None) -> LearnerRecord:
    if not raw:
        return LearnerRecord()
    version, events, first, last, n_ids, n_comps = _HEADER.unpack_from(raw, 0)
    if version not in {1, 2, FORMAT_VERSION}:
        raise ValueError(f"unknown learner record format {version}")
    pos = _HEADER.size
    offset = -1
    if version >= 2:  # the format that added it
        (offset,) = _OFFSET.unpack_from(raw, pos)
        pos += _OFFSET.size
    surprise = weight = 0.0
    if version >= 3:  # the format that added them
        surprise, weight = _SURPRISE.unpack_from(raw, pos)
        pos += _SURPRISE.size
    recent = tuple(raw[pos + 16 * i : pos + 16 * (i + 1)] for i in range(n_ids))
    pos += 16 * n_ids
    comps: dict[str, CompetencyState] = {}
    packed: dict[str, tuple[CompetencyState, bytes]] = {}
    for _ in range(n_comps):
        start = pos
        size = raw[pos]
        cid = raw[pos + 1 : pos + 1 + size].decode()
        pos += 1 + size
        (kind, value, att, cor, cs, ws, hints, last_at, first_at, tot, pred, mastered) = (
            _COMP.unpack_from(raw, pos)
        )
        pos += _COMP.size
        common = {
            "attempts": att,
            "correct": cor,
            "correct_streak": cs,
            "wrong_streak": ws,
            "last_event_at": _dt(last_at),
            "time_on_task_s": tot,
            "last_prediction": None if math.isnan(pred) else pred,
        }
        model: MasteryState | EloState = (
            MasteryState(log_odds=value, **common)
            if kind == _BKT
            else EloState(ability=value, **common)
        )
        c = comps[cid] = CompetencyState(model, hints, _dt(first_at), _dt(mastered))
        packed[cid] = (c, raw[start:pos])  # exactly what :func:`_pack` gives for it
    return LearnerRecord(
        events, _dt(first), _dt(last), recent, comps, offset, packed, surprise, weight
    )
