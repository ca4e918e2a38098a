"""Detector settings: documented defaults, overridable per tenant and per programme.

Resolution order (later wins, key by key): the defaults below, the tenant's row in
``detector_settings`` with ``programme = ''``, then the row for the learner's programme. Each row
holds a partial JSON object shaped like :class:`DetectorSettings` (``{"failure_streak": {"k":
5}}``); unknown keys are refused when the row is written (``cli settings set``) and when read.

Defaults and where they come from:

* wheel-spinning: Beck & Gong (2013): no mastery -- ``correct_in_a_row`` (3) correct answers in a
  row -- within ``max_attempts`` (10) attempts, *and* the mastery model agrees: its estimate
  after the latest attempt is below ``max_mastery`` (0.5, i.e. the model thinks the skill more
  likely unknown than known). The veto drops the learners who got there without three in a row
  but whose answers convinced the model (on the simulator: precision 68 -> 81 % and 53 -> 73 %
  on two seeds for 3-5 points of recall). Earlier flag, only where the model is confident the
  learner is not progressing: after at least ``early_min_attempts`` (8) attempts, the estimate is
  below ``early_max_mastery`` (0.2), rose by less than ``early_min_slope`` (0.01) per attempt
  over the last ``slope_window`` (5) attempts, and the predicted chance of a correct answer is
  below ``early_max_predicted`` (0.35, near guessing on multiple choice). The former early
  defaults (5 attempts, mastery < 0.5, slope < 0.03, predicted < 0.6) flagged 5 attempts
  before the true stall at 37-44 % precision: ordinary learners early in a competency look
  exactly like that. Cleared by mastery.
* failure streak: ``k`` (4) consecutive wrong answers on one competency; severity high from
  ``2k``. Cleared by a correct answer.
* inactivity: no evidence at all for ``days`` (7) while the learner's programme runs (see
  ``services/alerts/scanner.py`` for the clocks). Cleared by any new evidence.
* gaming: within the last ``window`` (10) attempts, ``fast_min`` (5) answers quicker than
  ``fast_answer_s`` (3 s, too fast to read a question); or ``guess_min`` (4) wrong answers
  quicker than ``guess_s`` (8 s, rapid guessing); or ``hint_abuse_min`` (3) attempts each
  preceded by at least ``hints_per_attempt`` (3) hints (clicking through to the bottom-out hint).
  Cleared when none holds on the current window.
* regression: a competency the learner had really mastered is lost again. Only after real
  mastery: the mastery estimate reached ``min_peak`` (0.95, the progress service's mastery
  threshold) or progress reported ``mastered``; a peak of 0.6 is ordinary BKT wobble on the way
  up. Only a sustained, significant drop: the estimate stayed more than ``drop`` (0.3) below the
  peak for each of the last ``sustain`` (3) attempts -- from 0.95 one wrong answer (a slip)
  takes BKT to about 0.7 and the next right answer back up, so a single wrong answer never
  holds; severity high from ``high_drop`` (0.5). Cleared when mastery is back within
  ``drop / 2`` of the peak.
* missed sessions: ``m`` (3) scheduled live sessions in a row that the learner was expected at
  and has no attendance evidence for, each counted ``grace_hours`` (2) after it ended (late
  attendance statements); severity high from ``2m``. Cleared by attending a session. Found by
  the scanner from the schedule ``cli programmes load`` reads from the framework file (see
  ``services/alerts/sessions.py``). On the simulator (two live classes a week, 200 learners,
  30 days, seeds 7 and 11, the walk run offline on its statements) ``m`` = 2 flagged every
  drop-out around its drop day but also 14-16 % of typical learners (precision against
  drop-outs 39-44 %); ``m`` = 3 flagged 90-95 % of drop-outs 4-5 days after the drop at
  78-79 % precision (3 % of typical learners).

Cooldown: after an alert of a kind is resolved, the same learner x kind x competency does not
raise a new one for ``cooldown_hours`` (12) of event time.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.alert_events import Support


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cooldown_hours: float = Field(default=12.0, ge=0)


class WheelSpinning(_Rule):
    max_attempts: int = Field(default=10, ge=1)
    correct_in_a_row: int = Field(default=3, ge=1)
    max_mastery: float = Field(default=0.5, ge=0, le=1)
    early_enabled: bool = True
    early_min_attempts: int = Field(default=8, ge=2)
    early_max_mastery: float = Field(default=0.2, ge=0, le=1)
    early_min_slope: float = Field(default=0.01, ge=0)
    early_max_predicted: float = Field(default=0.35, ge=0, le=1)
    slope_window: int = Field(default=5, ge=2, le=20)
    support: Support = "technical"


class FailureStreak(_Rule):
    k: int = Field(default=4, ge=2)
    support: Support = "technical"


class Inactivity(_Rule):
    days: float = Field(default=7.0, gt=0)
    career_after_days: float = Field(default=21.0, gt=0)  # suggest a career conversation then
    support: Support = "pastoral"


class Gaming(_Rule):
    window: int = Field(default=10, ge=2, le=20)
    fast_answer_s: float = Field(default=3.0, ge=0)
    fast_min: int = Field(default=5, ge=1)
    guess_s: float = Field(default=8.0, ge=0)
    guess_min: int = Field(default=4, ge=1)
    hints_per_attempt: int = Field(default=3, ge=1)
    hint_abuse_min: int = Field(default=3, ge=1)
    support: Support = "pastoral"


class Regression(_Rule):
    drop: float = Field(default=0.5, gt=0, le=1)
    high_drop: float = Field(default=0.7, gt=0, le=1)
    min_peak: float = Field(default=0.95, ge=0, le=1)
    sustain: int = Field(default=4, ge=1, le=20)
    support: Support = "technical"


class MissedSessions(_Rule):
    """Scheduled live sessions missed: ``m`` sessions in a row (see the module docstring)."""

    m: int = Field(default=3, ge=1)
    grace_hours: float = Field(default=2.0, ge=0, le=168)
    support: Support = "pastoral"


class DetectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    wheel_spinning: WheelSpinning = WheelSpinning()
    failure_streak: FailureStreak = FailureStreak()
    inactivity: Inactivity = Inactivity()
    gaming: Gaming = Gaming()
    regression: Regression = Regression()
    missed_sessions: MissedSessions = MissedSessions()

    def cooldown_hours(self, kind: str) -> float:
        rule: _Rule = getattr(self, kind)
        return rule.cooldown_hours


DEFAULTS = DetectorSettings()


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, recursively for nested objects."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(*overrides: dict[str, Any] | None) -> DetectorSettings:
    """The defaults with each partial override applied in order (raises on unknown keys)."""
    doc = DEFAULTS.model_dump()
    for override in overrides:
        if override:
            doc = merge(doc, override)
    return DetectorSettings.model_validate(doc)
