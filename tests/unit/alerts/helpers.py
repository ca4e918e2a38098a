"""Builders of progress updates for the detector tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.alerts.detectors import evaluate
from services.alerts.rules import DetectorSettings
from services.alerts.state import LearnerState, Signal
from shared.envelope import PROGRESS_UPDATE_V1, Envelope
from shared.events import ProgressUpdate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEARNER = "0123456789abcdef0123456789abcdef"


def update_env(at: datetime, **payload: Any) -> tuple[Envelope, ProgressUpdate]:
    fields: dict[str, Any] = {
        "statement_id": str(uuid.uuid4()),
        "evidence": "attempt",
        "competency": "py.basics",
        "programme": "ds-2026",
        "business_unit": "retail",
    }
    fields.update(payload)
    update = ProgressUpdate.model_validate(fields)
    env = Envelope.new(
        PROGRESS_UPDATE_V1,
        tenant="acme",
        learner_key=LEARNER,
        occurred_at=at,
        payload=update.model_dump(mode="json"),
    )
    return env, update


class Learner:
    """Feeds updates one minute apart (unless told) and keeps every signal."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self.state = LearnerState()
        self.at = T0
        self.signals: list[Signal] = []

    def feed(self, *, gap: timedelta = timedelta(minutes=1), **payload: Any) -> list[Signal]:
        self.at += gap
        env, update = update_env(self.at, **payload)
        self.state, signals = evaluate(self.state, env, update, self.settings)
        self.signals += signals
        return signals

    def answer(self, correct: bool, **payload: Any) -> list[Signal]:
        payload.setdefault("duration_s", 30.0)
        return self.feed(correct=correct, **payload)

    def kinds(self, action: str = "raise") -> list[str]:
        return [s.kind for s in self.signals if s.action == action]
