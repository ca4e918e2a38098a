"""Small runs of the benchmark scripts, so they cannot rot between benchmark runs.

The figures of these runs mean nothing (tiny counts on a busy machine); the tests check that
each script still runs end to end and reports what BENCHMARKS.md quotes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_xapi_validation_bench_runs() -> None:
    out = run("bench/bench_xapi_validation.py", "200", "1", "--no-ralph")
    assert "shared.xapi.parse_statement" in out
    assert "ratio (strict time / baseline time)" in out
    # Ralph's baseline is left out, and its line says so rather than showing a figure
    (ralph,) = [line for line in out.splitlines() if line.startswith("Ralph 5.1.0")]
    assert ralph.split(":", 1)[1].strip() == "not run: --no-ralph given"


def test_xapi_validation_bench_says_how_to_get_ralph(tmp_path: Path) -> None:
    missing = tmp_path / "ralph-venv" / "bin" / "python"
    out = run("bench/bench_xapi_validation.py", "200", "1", "--ralph-python", str(missing))
    (ralph,) = [line for line in out.splitlines() if line.startswith("Ralph 5.1.0")]
    assert "not run: --ralph-python" in ralph
    assert "does not exist" in ralph
    assert "make ralph-venv" in ralph
    assert "statements/s" not in ralph


def test_ingest_bench_runs_against_the_real_servers(
    kafka_bootstrap: str, database_url: str
) -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DATABASE_URL=database_url)
    out = run("bench/bench_ingest.py", "--smoke", env=env)
    rates = orjson.loads(out.strip().splitlines()[-1])
    assert set(rates) == {
        "baseline: aiokafka producer, same bytes",
        "HTTP, 1 statement per POST, 16 in flight",
        "HTTP, batches of 100, 4 in flight",
        "Kafka raw-topic intake (incl. start-up)",
    }
    assert all(rate > 0 for rate in rates.values())
    # Ralph's rows are in the table, not run (a smoke run never needs Ralph's venv), and say so
    ralph = [line for line in out.splitlines() if line.startswith("| Ralph LRS 5.1.0")]
    assert len(ralph) == 4
    for row in ralph:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2].startswith("not run: smoke run"), row
        assert cells[3:] == ["", "", ""], row  # no rate, ratio or CPU figure
    # the CPU floor: each part's cost and the rate it allows, the two sums the parts' sums
    floor = {
        cells[0]: (float(cells[1]), int(cells[2].replace(",", "")))
        for row in out.splitlines()
        if row.startswith("| ") and row.count("|") == 4
        for cells in [[cell.strip() for cell in row.strip("|").split("|")]]
        if cells[1].replace(".", "").isdigit()
    }
    assert len(floor) == 5, floor
    parts = [us for name, (us, _) in floor.items() if "floor" not in name]
    sums = sorted(us for name, (us, _) in floor.items() if "floor" in name)
    assert all(us > 0 for us in parts)
    assert sums == pytest.approx(sorted([parts[0] + parts[1], sum(parts)]), abs=0.2)
    # the rate is 1e6 / the cost before rounding to 0.1 µs
    assert all(most == pytest.approx(1e6 / us, rel=0.02) for us, most in floor.values())
