"""The ground truth written beside the statements (``truth.jsonl``), one JSON object a line.

First one ``learner`` record per learner (sorted by tenant and learner), then the event records
in the statements' event-time order:

``{"kind": "learner", "tenant", "learner", "name", "archetype", "programme", "cohort",
"registration", "stuck": [competency...], "drop_day": float | null, "params": {competency:
{prior, learn, forget, guess, slip}}, "final_known": {competency: bool}, "final_p_known":
{competency: float}, "statements": int}``
    ``learner`` is the framework's learner reference (``account:<homePage>|<name>`` or
    ``mbox:mailto:...``); ``drop_day`` is in days since the start.

``{"kind": "state", "statement_id", "timestamp", "tenant", "learner", "competency", "gamed":
null | "guess" | "hint", "known": {competency: bool}, "p_known": {competency: float}}``
    The hidden state just before every attempt (every ``answered`` statement), after forgetting
    was applied: ``known`` is the truth, ``p_known`` the oracle BKT posterior (the filter run with
    the learner's true parameters).

``{"kind": "stall", "statement_id", "timestamp", "tenant", "learner", "competency",
"attempts": 10, "resolved_at": timestamp | null}``
    Wheel-spinning, defined as :data:`STALL_ATTEMPTS` (10) consecutive attempts on a competency
    each made while it was truly unknown. ``statement_id``/``timestamp`` are those of the 10th
    attempt: the moment the learner truly stalled. ``resolved_at`` is the timestamp of the attempt
    after which the competency became known, if that happened within the run.

``{"kind": "dropout", "timestamp", "tenant", "learner", "last_statement_at",
"attendance_fade_from", "activity_fade_from"}``
    ``timestamp`` is the moment the learner stopped (the drop day); attendance started fading
    :data:`~tools.simulator.learners.ATTENDANCE_FADE_DAYS` days before, study activity
    :data:`~tools.simulator.learners.ACTIVITY_FADE_DAYS` days before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from tools.simulator.learners import HiddenState

Json = dict[str, Any]

STALL_ATTEMPTS: Final = 10


def state_record(
    *,
    statement_id: str,
    timestamp: str,
    tenant: str,
    learner: str,
    competency: str,
    gamed: str | None,
    state: HiddenState,
) -> Json:
    return {
        "kind": "state",
        "statement_id": statement_id,
        "timestamp": timestamp,
        "tenant": tenant,
        "learner": learner,
        "competency": competency,
        "gamed": gamed,
        "known": dict(state.known),
        "p_known": {c: round(p, 4) for c, p in state.p_known.items()},
    }


@dataclass
class StallTracker:
    """Counts consecutive attempts made while a competency was truly unknown."""

    tenant: str
    learner: str
    run: dict[str, int] = field(default_factory=dict)
    open: dict[str, Json] = field(default_factory=dict)
    records: list[tuple[int, Json]] = field(default_factory=list)

    def before(
        self, competency: str, known: bool, statement_id: str, timestamp: str, ms: int
    ) -> None:
        """Call before an attempt, with the hidden ``known`` at that moment."""
        if known:
            self.run[competency] = 0
            return
        count = self.run.get(competency, 0) + 1
        self.run[competency] = count
        if count == STALL_ATTEMPTS:
            record: Json = {
                "kind": "stall",
                "statement_id": statement_id,
                "timestamp": timestamp,
                "tenant": self.tenant,
                "learner": self.learner,
                "competency": competency,
                "attempts": STALL_ATTEMPTS,
                "resolved_at": None,
            }
            self.open[competency] = record
            self.records.append((ms, record))

    def after(self, competency: str, known: bool, timestamp: str) -> None:
        """Call after the attempt's learning step."""
        if known:
            record = self.open.pop(competency, None)
            if record is not None:
                record["resolved_at"] = timestamp
            self.run[competency] = 0
