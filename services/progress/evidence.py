"""From one xAPI statement and a tenant's framework to the evidence the mastery models consume.

Pure functions; the statement is the JSON object of an ingested (already validated) statement.

Competencies: the framework's mapping rules (:mod:`services.progress.mapping`).

Kind, first that applies (a verb is named by the last path segment of its IRI, so the ADL,
cmi5 and activitystrea.ms vocabularies all work):

1. ``attendance``: the object id is a programme session's ``activity_id`` and the verb is an
   attendance verb (``attended``, ``joined`` or ``join``);
2. ``activity``: the statement maps to no competency;
3. ``completion``: the verb is ``completed`` or ``satisfied``, or ``passed`` / ``failed`` on a
   course or module (``COMPLETION_TYPES``) -- *even with a score or success*: finishing a
   course, module or practice set is not one more answer to an item;
4. ``attempt``: the verb is not a session/lifecycle verb (``NOT_ATTEMPT_VERBS``: launched,
   progressed, ...) and the result has an outcome: ``result.success`` (it wins), else
   ``result.score.scaled``, else ``result.score.raw`` with ``min`` < ``max`` (scaled to 0..1);
   a score counts as correct at ``scaled >= PASS_SCORE`` (0.5). This is ``answered`` /
   ``attempted`` / ``passed`` / ``failed`` on an item or assessment;
5. ``hint``: the verb is ``HINT_VERB``, or one of ``HINT_EXTENSIONS`` (in result, context or
   object definition) is ``true`` or a positive count (on an attempt it sets ``hint_used``);
6. ``completion``: ``result.completion`` is true;
7. ``activity``: anything else.

Every evidence updates recency and time on task; only attempts move mastery and the attempt
counters and streaks (here and in the alerts service's detectors).

Mode: ``MODE_EXTENSION`` (``"practice"`` / ``"assessment"``, in context or object extensions)
wins; else an object or context-parent activity type in ``ASSESSMENT_TYPES`` means assessment;
else attempts are practice.

Time on task: ``result.duration``, an ISO 8601 duration
(:func:`services.progress.durations.parse_duration`); invalid -> None.
Event time: ``timestamp``, else ``stored``, else the caller's ``default_time``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from services.progress.durations import cached_duration
from services.progress.mapping import FrameworkIndex, as_list, json_obj, match_parts
from shared.framework import Framework

PASS_SCORE = 0.5
EXT = "https://skillstream.io/xapi/ext/"
HINT_EXTENSION = EXT + "hints"
#: hint counts: ours, and the simulator's (``hint``: the hint's number on a hint request;
#: ``hints-used``: hints requested before an answer)
HINT_EXTENSIONS = (HINT_EXTENSION, EXT + "hint", EXT + "hints-used")
MODE_EXTENSION = EXT + "mode"
HINT_VERB = "https://skillstream.io/xapi/verbs/requested-hint"
COMPLETED_VERB = "http://adlnet.gov/expapi/verbs/completed"
ATTENDANCE_VERB_NAMES = frozenset({"attended", "joined", "join"})
COMPLETION_VERB_NAMES = frozenset({"completed", "satisfied"})
#: completion when their object is a course or module; an attempt on an item or assessment
RESULT_VERB_NAMES = frozenset({"passed", "failed"})
COMPLETION_TYPES = frozenset(
    {
        "http://adlnet.gov/expapi/activities/course",
        "http://adlnet.gov/expapi/activities/module",
        "http://adlnet.gov/expapi/activities/lesson",
        "https://w3id.org/xapi/cmi5/activitytype/course",
    }
)
#: verbs whose statements are never attempts, whatever their result says (session life cycle,
#: progress reports, attendance)
NOT_ATTEMPT_VERBS = (
    frozenset(
        {
            "launched",
            "initialized",
            "terminated",
            "abandoned",
            "waived",
            "progressed",
            "suspended",
            "resumed",
        }
    )
    | ATTENDANCE_VERB_NAMES
)
ASSESSMENT_TYPES = frozenset(
    {
        "http://adlnet.gov/expapi/activities/assessment",
        "https://w3id.org/xapi/cmi5/activitytype/block",  # graded blocks
    }
)

Kind = Literal["attendance", "attempt", "hint", "completion", "activity"]


class EvidenceError(ValueError):
    """The statement lacks what evidence needs (e.g. any event time)."""


class CompetencyWeight(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    competency: str
    weight: float


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    occurred_at: datetime
    statement_id: str | None = None
    verb_id: str = ""
    activity_id: str | None = None
    competencies: tuple[CompetencyWeight, ...] = ()
    correct: bool | None = None  # attempts only
    score: float | None = None  # scaled 0..1 when known
    mode: Literal["practice", "assessment"] | None = None
    hint_used: bool = False
    completed: bool = False
    duration_s: float | None = None
    programme_id: str | None = None  # attendance
    session_id: str | None = None


# --- the framework, indexed once -----------------------------------------------------------------


# --- extraction --------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


_NO_EXTENSIONS: Final = (None, None, None)
_VERB_NAMES: dict[str, str] = {}  # verb id -> name: a few distinct verbs; bounded


def _verb_name(verb_id: str) -> str:
    """The last path segment of the verb's IRI (``.../verbs/answered`` -> ``answered``)."""
    name = _VERB_NAMES.get(verb_id)
    if name is None:
        if len(_VERB_NAMES) >= 1_024:
            _VERB_NAMES.clear()
        name = _VERB_NAMES[verb_id] = verb_id.rstrip("/").rsplit("/", 1)[-1]
    return name


def _is_str_in(value: Any, names: frozenset[str]) -> bool:
    return type(value) is str and value in names


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _attempt(result: Mapping[str, Any]) -> tuple[bool, float | None] | None:
    """(correct, scaled score) when the result makes the statement an attempt."""
    score = json_obj(result.get("score"))
    scaled = _number(score.get("scaled"))
    if scaled is None and score:
        raw, lo, hi = (_number(score.get(k)) for k in ("raw", "min", "max"))
        if raw is not None and lo is not None and hi is not None and hi > lo:
            scaled = (raw - lo) / (hi - lo)
    success = result.get("success")
    if isinstance(success, bool):
        return success, scaled
    if scaled is not None:
        return scaled >= PASS_SCORE, scaled
    return None


def _hint(verb_id: str, exts: Iterable[Mapping[str, Any]]) -> bool:
    if verb_id == HINT_VERB:
        return True
    for ext in exts:
        if not ext:
            continue
        for key in HINT_EXTENSIONS:
            v = ext.get(key)
            if v is True or (isinstance(v, int | float) and not isinstance(v, bool) and v > 0):
                return True
    return False


def _mode(
    obj_type: Any, activities: Mapping[str, Any], exts: Iterable[Mapping[str, Any]]
) -> Literal["practice", "assessment"] | None:
    for ext in exts:
        v = ext.get(MODE_EXTENSION) if ext else None
        if v in ("practice", "assessment"):
            return "assessment" if v == "assessment" else "practice"
    if type(obj_type) is str and obj_type in ASSESSMENT_TYPES:
        return "assessment"
    if activities:
        for a in as_list(activities.get("parent")):
            parent_type = json_obj(json_obj(a).get("definition")).get("type")
            if type(parent_type) is str and parent_type in ASSESSMENT_TYPES:
                return "assessment"
    return None


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build (hot path)
class RawEvidence:
    """:class:`Evidence` without pydantic (the worker's hot path builds no model); the same
    fields and values (``competencies`` as ``(competency, weight)`` pairs, sorted)."""

    kind: Kind
    occurred_at: datetime
    statement_id: str | None
    verb_id: str
    activity_id: str | None
    competencies: tuple[tuple[str, float], ...]
    correct: bool | None
    score: float | None
    mode: Literal["practice", "assessment"] | None
    hint_used: bool
    completed: bool
    duration_s: float | None
    programme_id: str | None
    session_id: str | None


def extract_evidence(
    statement: Mapping[str, Any],
    framework: Framework | FrameworkIndex,
    *,
    default_time: datetime | None = None,
) -> Evidence:
    """The evidence in one statement (see the module documentation for every rule)."""
    index = framework if isinstance(framework, FrameworkIndex) else FrameworkIndex.of(framework)
    raw = extract_raw(statement, index, default_time=default_time)
    return Evidence(
        kind=raw.kind,
        occurred_at=raw.occurred_at,
        statement_id=raw.statement_id,
        verb_id=raw.verb_id,
        activity_id=raw.activity_id,
        competencies=tuple(CompetencyWeight(competency=c, weight=w) for c, w in raw.competencies),
        correct=raw.correct,
        score=raw.score,
        mode=raw.mode,
        hint_used=raw.hint_used,
        completed=raw.completed,
        duration_s=raw.duration_s,
        programme_id=raw.programme_id,
        session_id=raw.session_id,
    )


def extract_raw(
    statement: Mapping[str, Any],
    index: FrameworkIndex,
    *,
    default_time: datetime | None = None,
    event_time: datetime | None = None,
) -> RawEvidence:
    """:func:`extract_evidence` as a :class:`RawEvidence` (what the worker uses per event).

    ``event_time``: the statement's event time when the caller has it already (the envelope's
    ``occurred_at``, which ingest took from the same ``timestamp`` / ``stored``): not parsed
    again."""
    occurred_at = event_time or _time(statement.get("timestamp")) or _time(statement.get("stored"))
    occurred_at = occurred_at or default_time
    if occurred_at is None:
        raise EvidenceError("statement has neither timestamp nor stored, and no default time")
    verb_id = json_obj(statement.get("verb")).get("id")
    verb_id = verb_id if isinstance(verb_id, str) else ""
    obj = json_obj(statement.get("object"))
    definition = json_obj(obj.get("definition"))
    result = json_obj(statement.get("result"))
    context = json_obj(statement.get("context"))
    activities = json_obj(context.get("contextActivities"))
    activity_id = obj.get("id")
    activity_id = activity_id if isinstance(activity_id, str) else None
    sources = (result.get("extensions"), context.get("extensions"), definition.get("extensions"))
    # none at all (the common case): nothing to look at in them (empty ones are skipped)
    exts = () if sources == _NO_EXTENSIONS else [json_obj(x) for x in sources]

    duration_s = cached_duration(result.get("duration"))
    found = match_parts(index, obj, definition, result, context, activities)
    success = result.get("success")
    if type(success) is bool and "score" not in result:  # what _attempt says of it, sooner
        attempt: tuple[bool, float | None] | None = (success, None)
    else:
        attempt = _attempt(result)
    hint = _hint(verb_id, exts)
    verb_name = _verb_name(verb_id)
    completes = verb_name in COMPLETION_VERB_NAMES or (
        verb_name in RESULT_VERB_NAMES and _is_str_in(definition.get("type"), COMPLETION_TYPES)
    )
    completed = completes or result.get("completion") is True
    session = index.sessions.get(activity_id) if activity_id else None
    attending = session is not None and verb_name in ATTENDANCE_VERB_NAMES

    kind: Kind
    if attending:
        kind = "attendance"
    elif not found:
        kind = "activity"
    elif completes:
        kind = "completion"
    elif attempt is not None and verb_name not in NOT_ATTEMPT_VERBS:
        kind = "attempt"
    elif hint:
        kind = "hint"
    elif completed:
        kind = "completion"
    else:
        kind = "activity"
    mode = _mode(definition.get("type"), activities, exts)
    if mode is None and kind == "attempt":
        mode = "practice"
    sid = statement.get("id")
    return RawEvidence(
        kind,
        occurred_at,
        sid if isinstance(sid, str) else None,
        verb_id,
        activity_id,
        tuple(sorted(found.items())),
        attempt[0] if attempt else None,
        attempt[1] if attempt else None,
        mode,
        hint,
        completed,
        duration_s,
        session[0] if attending and session else None,
        session[1] if attending and session else None,
    )
