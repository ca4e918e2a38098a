"""The offline replay of the pipeline's pure code (``bench/alert_replay.py``) on a tiny cohort."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pytest

from services.alerts.rules import resolve
from tools.simulator.simulate import Config, simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

from alert_replay import main, override, progress_updates, replay, wheel_alerts


def test_overrides_parse_to_partial_settings() -> None:
    assert override("wheel_spinning.raise_probability=0.3") == {
        "wheel_spinning": {"raise_probability": 0.3}
    }
    assert override("wheel_spinning.method=attempts") == {"wheel_spinning": {"method": "attempts"}}
    with pytest.raises(argparse.ArgumentTypeError):
        override("raise_probability=0.3")


def test_replay_is_deterministic_and_follows_the_settings() -> None:
    settings = resolve()
    first, again = replay(5, 16, settings, days=12), replay(5, 16, settings, days=12)
    assert first == again
    assert first["true_stalls"] > 0
    [figures] = first["wheel"]
    assert 0.0 <= figures["recall"] <= 1.0
    sim = simulate(Config(seed=5, learners=16, days=12))
    updates = progress_updates(sim)
    assert len(updates) >= len(sim.events)  # one or more updates per statement
    by_probability = wheel_alerts(updates, settings)
    by_attempts = wheel_alerts(updates, resolve({"wheel_spinning": {"method": "attempts"}}))
    assert by_probability
    assert by_attempts
    assert by_probability != by_attempts
    assert wheel_alerts(updates, resolve({"wheel_spinning": {"enabled": False}})) == []


def test_the_command_prints_a_line_per_cohort(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--cohort", "5:16", "--days", "12", "--set", "wheel_spinning.raise_probability=0.5"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("seed 5, 16 learners")
    assert '"raise_probability":0.5' in lines[1]
    assert not math.isnan(float(lines[0].split("recall ")[1].split(",")[0]))


def test_the_comparison_runs_both_methods_and_judges_the_held_out_cohorts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--compare", "--cohort", "5:16", "--cohort", "101:16", "--days", "12"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| 5,", "| 101,"))]
    assert len(rows) == 2
    assert "(tuning)" in rows[1]
    assert "(tuning)" not in rows[0]
    assert "cohorts not used for tuning" in out
    assert " of 1 cohorts" in out  # seed 101 is a tuning seed: only seed 5 is judged
