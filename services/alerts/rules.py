"""Detector settings: documented defaults, overridable per tenant and per programme.

Resolution order (later wins, key by key): the defaults below, the tenant's row in
``detector_settings`` with ``programme = ''``, then the row for the learner's programme. Each row
holds a partial JSON object shaped like :class:`DetectorSettings` (``{"failure_streak": {"k":
5}}``); unknown keys are refused when the row is written (``cli settings set``) and when read.

Defaults and where they come from:

* wheel-spinning: many attempts on a competency without mastery. Mastery is shown by
  ``correct_in_a_row`` (3) right answers in a row that are evidence: an answer given after
  ``bottom_out_hints`` (3) hints or more (the answer was shown) or quicker than ``min_answer_s``
  (5 s: not read, a guess) counts as an attempt but neither builds nor breaks a streak. Two
  methods (``method``):

  - ``stall_probability`` (default): the stall filter (:mod:`services.alerts.stall`, BKT with
    forgetting over whether the skill is known and how many attempts in a row were made without
    knowing it) gives the probability that the learner has made ``max_attempts`` (10, Beck &
    Gong's count) attempts in a row without knowing the skill. Raised when it reaches
    ``raise_probability`` (0.45), or earlier when the probability that the next attempt
    completes such a run reaches ``raise_next_probability`` (0.75); severity high from
    ``high_probability`` (0.8). The filter's parameters: ``bkt`` (the framework defaults: prior
    0.2, learn 0.15, forget 0.02 a day, guess 0.2, slip 0.1; set a tenant's fitted values here);
    a share ``stuck_share`` (0.05) of learners who barely learn the skill (learn x
    ``stuck_learn_factor``, 0.03), which the answers make more or less likely; an answer that
    is not evidence teaches ``not_evidence_learn_factor`` (0.1) of a normal attempt. When
    mastery is shown, ``reset_on_mastery`` says whether the filter forgets a possible stall:
    ``after_alert`` (default) only once an alert was raised on it -- before that, three right
    answers after a long run of wrong ones may be guesses and the filter keeps weighing that;
    ``always`` at every showing of mastery (the behaviour before); ``never`` keeps it for good
    (the alert clears on mastery and comes back at the next struggle after the cooldown).
  - ``attempts``: the count itself, since the learner last showed mastery: ``max_attempts``
    attempts without mastery and the mastery model's estimate below ``max_mastery`` (0.7),
    severity high; earlier (medium) after ``early_min_attempts`` (9) attempts of which
    ``early_min_wrong`` (7) evidential answers were wrong, optionally gated on the model's
    estimate (``early_max_mastery``), its slope over ``slope_window`` (5) attempts
    (``early_min_slope``) and its predicted chance of a right answer (``early_max_predicted``;
    all three 1.0, off, by default).

  Both raise only while the learner is struggling -- at most ``recent_max_correct`` (1) of the
  last ``recent_window`` (3) evidential answers right (a learner who has just got it is not
  flagged, and is if it slips again) -- and hold the alert until mastery is shown (then it is
  auto-resolved and, with an alert raised, the filter's stall is over); a new run can raise a
  new one after the cooldown.

  How the defaults were chosen: on the classroom simulator, whose truth calls a stall 10
  attempts in a row made while the skill was truly unknown, replayed offline through the
  services' own code (``bench/alert_replay.py``; ``BENCHMARKS.md``, "Wheel-spinning across
  cohorts", has the table). Tuned on seeds 101 and 102 (400 learners each, together):
  ``reset_on_mastery`` x ``raise_probability`` 0.40-0.55 x ``raise_next_probability`` 0.60-0.80
  (steps of 0.05), the setting with the highest precision at recall >= 95%: 75.1% / 95.0% (76.9%
  / 95.1% and 73.3% / 94.9% apart; median delay -1 attempt), where the previous defaults
  (``always``, 0.4, 0.6) gave 72.6% / 95.2% and the best ``always`` setting 74.1% / 95.0% (0.4,
  0.75); ``after_alert`` and ``never`` flag the same pairs, but ``never`` raised 50-65% more
  alerts (seeds 101 and 2027: the same pair again after each showing of mastery). Not used for
  tuning: seeds 103-105 (400 learners each) 71.5-72.1% / 94.4-95.7%, pooled 71.8% / 95.0%
  (``attempts``: 66.4% / 92.0%); seeds 2027-2030 (100 learners each) 75.0-81.3% / 92.7-98.4%,
  pooled 79.7% / 96.0%. What any detector can reach there is bounded: the same kind of filter
  run with each learner's true parameters, knowing which attempts were gamed and judging with
  every answer on the pair (hindsight, its threshold picked on the cohort), reaches precision
  74.6% at recall 95% on seeds 103-105 pooled and 84.0% on 2027-2030 pooled (the replay's table
  gives it per cohort). The simulator's gamed attempts teach a tenth of a real one, as the 0.1
  default assumes: on real data that factor is a guess.
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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.alerts.state import RECENT_ATTEMPTS
from shared.alert_events import Support
from shared.framework import BktParams


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    cooldown_hours: float = Field(default=12.0, ge=0)


class WheelSpinning(_Rule):
    method: Literal["stall_probability", "attempts"] = "stall_probability"
    max_attempts: int = Field(default=10, ge=1, le=RECENT_ATTEMPTS)
    correct_in_a_row: int = Field(default=3, ge=1)
    recent_window: int = Field(default=3, ge=1, le=RECENT_ATTEMPTS)
    recent_max_correct: int = Field(default=1, ge=0)
    bottom_out_hints: int = Field(default=3, ge=1)
    min_answer_s: float = Field(default=5.0, ge=0)
    # method "stall_probability"
    raise_probability: float = Field(default=0.45, gt=0, le=1)
    raise_next_probability: float = Field(default=0.75, gt=0, le=1)
    high_probability: float = Field(default=0.8, gt=0, le=1)
    bkt: BktParams = BktParams()
    stuck_share: float = Field(default=0.05, ge=0, lt=1)
    stuck_learn_factor: float = Field(default=0.03, ge=0, le=1)
    not_evidence_learn_factor: float = Field(default=0.1, ge=0, le=1)
    reset_on_mastery: Literal["always", "after_alert", "never"] = "after_alert"
    # method "attempts"
    max_mastery: float = Field(default=0.7, ge=0, le=1)
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
