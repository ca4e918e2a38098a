"""All detectors together over a serialised state: replaying the same updates, with the
learner state written and read back between every update, gives the same signals, and the
state keeps the ids of the events it has seen."""

from __future__ import annotations

from datetime import timedelta

from services.alerts.detectors import evaluate
from services.alerts.rules import DetectorSettings
from services.alerts.state import LearnerState
from tests.unit.alerts.helpers import T0, update_env


def test_replay_gives_the_same_signals_and_state_round_trips() -> None:
    updates = [update_env(T0 + timedelta(minutes=i), correct=False, duration_s=2.0)
               for i in range(12)]  # fmt: skip
    runs = []
    for _ in range(2):
        state, out = LearnerState(), []
        for env, upd in updates:
            state = LearnerState.from_bytes(state.to_bytes())
            state, signals = evaluate(state, env, upd, DetectorSettings())
            out += [(s.kind, s.action, s.severity, s.at) for s in signals]
        runs.append(out)
    assert runs[0] == runs[1]
    assert {k for k, *_ in runs[0]} == {"failure_streak", "gaming", "wheel_spinning"}
    assert str(updates[-1][0].event_id) in state.seen
