"""Detector settings: documented defaults, overridable per tenant and per programme.

Resolution order (later wins, key by key): the defaults below, the tenant's row in
``detector_settings`` with ``programme = ''``, then the row for the learner's programme. Each row
holds a partial JSON object shaped like :class:`DetectorSettings` (``{"failure_streak": {"k":
5}}``); unknown keys are refused when the row is written (``cli settings set``) and when read.

Defaults and where they come from:

* wheel-spinning: Beck & Gong (2013): no mastery -- ``correct_in_a_row`` (3) correct answers in a
  row -- within ``max_attempts`` (10) attempts, counted since the learner last showed mastery (not
  since the first attempt: a skill mastered, forgotten and then practised in vain is a stall
  too). Only answers that are evidence count for or against mastery: one given after
  ``bottom_out_hints`` (3) hints or more (the answer was shown) or quicker than ``min_answer_s``
  (5 s: not read, a guess) counts as an attempt but neither builds nor breaks a streak (a gamer
  who clicks through to the answer is not mastering anything). Two checks against the evidence
  of the moment: the learner is still struggling -- at most ``recent_max_correct`` (1) of the
  last ``recent_window`` (3) evidential answers right; a learner who has just got it (two of the
  last three right) is not flagged, and is if it slips again -- and the mastery model agrees:
  its estimate after the latest attempt is below ``max_mastery`` (0.7). Severity high. Earlier
  flag (severity medium), where the answers already say enough: after ``early_min_attempts`` (9)
  attempts without mastery of which at least ``early_min_wrong`` (7) evidential answers were
  wrong, still struggling as above; optionally also the model's estimate below
  ``early_max_mastery``, its rise per attempt over the last ``slope_window`` (5) attempts below
  ``early_min_slope`` and its predicted chance of a correct answer below
  ``early_max_predicted`` (all 1.0 by default, i.e. off: on the tuning cohort each gating cost
  more early detections than it saved false alarms). An alert stays open until the learner
  shows mastery (auto-resolved then); a later run of attempts without mastery can raise a new
  one after the cooldown.

  Tuned on the classroom simulator, seed 101 only (400 learners, 263 true stalls = 10
  consecutive attempts while the skill was truly unknown); ``bench/bench_alert_quality.py``
  reports a held-out seed. On seed 101: precision 72 %, recall 92 %, median delay -1 attempt
  (the classic rule: 57 %, 71 %, 0). The trade-off is set by ``max_mastery`` and
  ``correct_in_a_row``: 1.0 -> 67 % / 94 %; ``correct_in_a_row`` 4 -> 67 % / 95 %; without the
  early flag 76 % / 89 % and no gain in delay. Precision 75 % with recall 95 % was out of reach
  on that cohort, even for a filter that knows the simulator's learner types (73 % / 93 %,
  64 % / 96 %): a learner who is truly stuck and one who is about to learn give the same
  answers until the attempts run out, and a lucky streak of guesses looks like mastery.
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

from services.alerts.state import RECENT_ATTEMPTS
from shared.alert_events import Support


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cooldown_hours: float = Field(default=12.0, ge=0)


class WheelSpinning(_Rule):
    max_attempts: int = Field(default=10, ge=1, le=RECENT_ATTEMPTS)
    correct_in_a_row: int = Field(default=3, ge=1)
    max_mastery: float = Field(default=0.7, ge=0, le=1)
    recent_window: int = Field(default=3, ge=1, le=RECENT_ATTEMPTS)
    recent_max_correct: int = Field(default=1, ge=0)
    bottom_out_hints: int = Field(default=3, ge=1)
    min_answer_s: float = Field(default=5.0, ge=0)
    early_enabled: bool = True
    early_min_attempts: int = Field(default=9, ge=2, le=RECENT_ATTEMPTS)
    early_min_wrong: int = Field(default=7, ge=1)
    early_max_mastery: float = Field(default=1.0, ge=0, le=1)
    early_min_slope: float = Field(default=1.0, ge=0, le=1)
    early_max_predicted: float = Field(default=1.0, ge=0, le=1)
    slope_window: int = Field(default=5, ge=2, le=RECENT_ATTEMPTS)
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
