"""xAPI 2.0 statements shaped like the ones LMSs and virtual-classroom tools send.

Verbs (ADL vocabulary, ``http://adlnet.gov/expapi/verbs/<name>``):

* ``attempted``  — the learner opens a practice set (object: the module) or an assessment.
* ``asked``      — the learner requests a hint on an item (object: the item); the hint's number is
  in ``result.extensions[EXT_HINT]``. This is the simulator's hint-request verb.
* ``answered``   — one item answered: ``result.success``, ``score {scaled, raw, min, max}``,
  ``response`` (the choice id), ``duration``; ``result.extensions[EXT_HINTS_USED]`` counts the
  hints requested before answering; ``context.extensions[EXT_ATTEMPT]`` numbers the attempts of
  this learner on this item.
* ``completed``  — a practice set or assessment finished, with its score and success.
* ``progressed`` — progress through a module, as the cmi5 progress extension (0..100).
* ``attended``   — a live virtual class, with the time present as ``result.duration``.

Every statement has a deterministic ``id`` (UUID v4 drawn from the learner's id stream), an
``actor`` (an account ``{homePage, name}``, or an ``mbox`` for tenants configured so), a
``context`` with the learner's ``registration``, ``contextActivities`` parent (the module, or the
course for module-level statements) and grouping (the course, plus the module for assessment
items), ``platform`` and ``language``, and a UTC ``timestamp`` with milliseconds.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime
from typing import Any, Final

from tools.simulator.academy import (
    ACTIVITY_TYPES,
    CHOICES,
    CompetencySpec,
    ProgrammeSpec,
    Session,
    Tenant,
)

Json = dict[str, Any]
Parents = tuple[list[Json], list[Json]]

ADL: Final = "http://adlnet.gov/expapi/verbs/"
VERB_NAMES: Final = ("attempted", "asked", "answered", "completed", "progressed", "attended")
VERBS: Final[dict[str, Json]] = {
    name: {"id": ADL + name, "display": {"en-US": name}} for name in VERB_NAMES
}
EXT_HINT: Final = "https://skillstream.io/xapi/ext/hint"
EXT_HINTS_USED: Final = "https://skillstream.io/xapi/ext/hints-used"
EXT_ATTEMPT: Final = "https://skillstream.io/xapi/ext/attempt"
EXT_PROGRESS: Final = "https://w3id.org/xapi/cmi5/result/extensions/progress"

_FIRST: Final = ("Ada", "Grace", "Alan", "Linus", "Ines", "Kofi", "Mei", "Ravi", "Sofia", "Tariq")
_LAST: Final = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kumar")


_DAYS: dict[int, str] = {}
_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def iso_ms(ms: int) -> str:
    """An epoch-millisecond instant as an xAPI timestamp (``2026-02-02T09:00:00.000Z``)."""
    day, rest = divmod(ms, 86_400_000)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = f"{datetime.fromtimestamp(day * 86_400, UTC):%Y-%m-%d}"
    secs, milli = divmod(rest, 1000)
    minutes, sec = divmod(secs, 60)
    return f"{date}T{minutes // 60:02d}:{minutes % 60:02d}:{sec:02d}.{milli:03d}Z"


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration with at most two decimals (``PT42.5S``, ``PT1M3S``, ``PT1H2M``)."""
    centis = max(0, round(seconds * 100))
    hours, rest = divmod(centis, 360000)
    minutes, centis = divmod(rest, 6000)
    secs = f"{centis // 100}.{centis % 100:02d}".rstrip("0").rstrip(".")
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if centis or out == "PT":
        out += f"{secs}S"
    return out


def new_uuid(rng: random.Random) -> str:
    """A random (version 4, RFC 4122 variant) UUID drawn from ``rng``: deterministic."""
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def correct_choice(item: str) -> str:
    return CHOICES[zlib.crc32(item.encode()) % len(CHOICES)]


_ITEMS: dict[str, Json] = {}  # item activities, built once per process


def _ref(activity_id: str, kind: str) -> Json:
    return {
        "objectType": "Activity",
        "id": activity_id,
        "definition": {"type": ACTIVITY_TYPES[kind]},
    }


class StatementFactory:
    """Builds the statements of one learner; activity objects are built once and shared."""

    def __init__(
        self,
        tenant: Tenant,
        programme: ProgrammeSpec,
        index: int,
        registration: str,
        ids: random.Random,
    ) -> None:
        self.tenant = tenant
        self.programme = programme
        self.registration = registration
        self._ids = ids
        name = f"{_FIRST[index % len(_FIRST)]} {_LAST[(index // len(_FIRST)) % len(_LAST)]}"
        self.actor: Json = {"objectType": "Agent", "name": name}
        if tenant.actor_kind == "account":
            self.actor["account"] = {"homePage": tenant.lms, "name": f"u-{index:05d}"}
        else:
            self.actor["mbox"] = f"mailto:learner{index:05d}@{tenant.id}.example.com"
        self._course = {
            "objectType": "Activity",
            "id": programme.course,
            "definition": {"type": ACTIVITY_TYPES["course"], "name": {"en-US": programme.name}},
        }
        self._top: Parents = ([self._course], [self._course])

    def new_id(self) -> str:
        return new_uuid(self._ids)

    def _base(
        self, verb: str, obj: Json, ms: int, context: Json, result: Json | None = None,
        *, statement_id: str | None = None,
    ) -> Json:  # fmt: skip
        st: Json = {
            "id": statement_id or self.new_id(),
            "actor": self.actor,
            "verb": VERBS[verb],
            "object": obj,
        }
        if result is not None:
            st["result"] = result
        st["context"] = context
        st["timestamp"] = iso_ms(ms)
        return st

    def _context(self, parent: list[Json], grouping: list[Json], attempt: int = 0) -> Json:
        context: Json = {
            "registration": self.registration,
            "contextActivities": {"parent": parent, "grouping": grouping},
            "platform": self.tenant.platform,
            "language": "en-US",
        }
        if attempt:
            context["extensions"] = {EXT_ATTEMPT: attempt}
        return context

    # --- activities ---------------------------------------------------------------------

    def module(self, comp: CompetencySpec) -> Json:
        return {
            "objectType": "Activity",
            "id": comp.module,
            "definition": {"type": ACTIVITY_TYPES["module"], "name": {"en-US": comp.name}},
        }

    def assessment(self, comp: CompetencySpec) -> Json:
        return {
            "objectType": "Activity",
            "id": comp.assessment,
            "definition": {
                "type": ACTIVITY_TYPES["assessment"],
                "name": {"en-US": f"{comp.name}: assessment"},
            },
        }

    @staticmethod
    def item(comp: CompetencySpec, item_id: str, label: str) -> Json:
        cached = _ITEMS.get(item_id)
        if cached is None:
            cached = {
                "objectType": "Activity",
                "id": item_id,
                "definition": {
                    "name": {"en-US": f"{comp.name}, {label}"},
                    "type": ACTIVITY_TYPES["interaction"],
                    "interactionType": "choice",
                    "correctResponsesPattern": [correct_choice(item_id)],
                    "choices": [
                        {"id": c, "description": {"en-US": f"Option {c.upper()}"}} for c in CHOICES
                    ],
                },
            }
            _ITEMS[item_id] = cached
        return cached

    # --- statements ---------------------------------------------------------------------

    def attempted(self, obj: Json, ms: int) -> Json:
        return self._base("attempted", obj, ms, self._context(*self._top))

    def item_parents(self, comp: CompetencySpec, *, assessment: bool) -> Parents:
        """contextActivities of an item: parent module (grouping course), or parent
        assessment (grouping module and course)."""
        if assessment:
            return [_ref(comp.assessment, "assessment")], [
                _ref(comp.module, "module"),
                self._course,
            ]
        return [_ref(comp.module, "module")], [self._course]

    def asked(self, item: Json, parents: Parents, ms: int, hint: int, attempt: int) -> Json:
        result = {"extensions": {EXT_HINT: hint}}
        return self._base("asked", item, ms, self._context(*parents, attempt=attempt), result)

    def answered(
        self,
        item: Json,
        parents: Parents,
        ms: int,
        *,
        response: str,
        correct: bool,
        seconds: float,
        hints: int,
        attempt: int,
        statement_id: str,
    ) -> Json:
        result = {
            "success": correct,
            "score": {"scaled": 1.0 if correct else 0.0, "raw": int(correct), "min": 0, "max": 1},
            "completion": True,
            "response": response,
            "duration": iso_duration(seconds),
            "extensions": {EXT_HINTS_USED: hints},
        }
        context = self._context(*parents, attempt=attempt)
        return self._base("answered", item, ms, context, result, statement_id=statement_id)

    def completed(
        self, obj: Json, ms: int, *, raw: int, out_of: int, passed: bool, seconds: float
    ) -> Json:
        result = {
            "success": passed,
            "completion": True,
            "score": {"scaled": round(raw / out_of, 4), "raw": raw, "min": 0, "max": out_of},
            "duration": iso_duration(seconds),
        }
        return self._base("completed", obj, ms, self._context(*self._top), result)

    def progressed(self, comp: CompetencySpec, ms: int, percent: int) -> Json:
        result = {"extensions": {EXT_PROGRESS: percent}}
        return self._base("progressed", self.module(comp), ms, self._context(*self._top), result)

    def attended(self, session: Session, ms: int, seconds: float) -> Json:
        obj = {
            "objectType": "Activity",
            "id": session.activity_id,
            "definition": {
                "type": ACTIVITY_TYPES["meeting"],
                "name": {"en-US": f"Live class: {session.competency.name}"},
            },
        }
        ctx = self._context([_ref(session.competency.module, "module")], [self._course])
        result = {"completion": True, "duration": iso_duration(seconds)}
        return self._base("attended", obj, ms, ctx, result)
