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

from alert_replay import (
    POOL,
    Tally,
    main,
    override,
    pool,
    pooled_ceiling,
    progress_updates,
    replay,
    wheel_alerts,
)


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
    main(
        ["--compare", "--cohort", "5:16", "--cohort", "101:16", "--cohort", "7:12", "--days", "12"]
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| 5,", "| 101,", "| 7,"))]
    assert len(rows) == 3
    assert "(tuning)" in rows[1]
    assert "(tuning)" not in rows[0]
    assert all(row.endswith("%) |") for row in rows)  # the ceiling's column
    [pooled] = [line for line in out.splitlines() if line.startswith("| held out")]
    assert pooled.startswith("| held out, all, pooled (5, 7) |")  # one cohort per size: no row
    assert "cohorts not used for tuning" in out
    assert " of 2 cohorts" in out  # seed 101 is a tuning seed: seeds 5 and 7 are judged
    assert "; pooled, all: " in out
    assert '"pool"' not in out  # the pooled scores stay out of the JSON line


def test_tallies_and_the_ceiling_pool_across_cohorts() -> None:
    assert pool([Tally(3, 2, 4, [-1, 0]), Tally(1, 1, 2, [-2])]) == Tally(4, 3, 6, [-1, 0, -2])
    # each cohort alone ranks its stall first (precision 1 at recall 1); pooled, one threshold
    # must take cohort 1's false alarm (0.7) to reach cohort 2's stall (0.6)
    results = [
        {POOL: {"ceiling": [(0.9, True), (0.7, False)]}},
        {POOL: {"ceiling": [(0.6, True), (0.1, False)]}},
    ]
    point = pooled_ceiling(results)
    assert point is not None
    assert (point.threshold, point.flagged, point.hits, point.positives) == (0.6, 3, 2, 2)
