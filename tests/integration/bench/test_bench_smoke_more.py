"""Small runs of the pipeline benchmarks and of ``bench/run_all.py``, so they cannot rot.

The figures of these runs mean nothing (tiny counts on a busy machine); the tests check that each
script still runs end to end against the real servers and reports what BENCHMARKS.md quotes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    return dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DATABASE_URL=database_url)


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alert_quality_bench_runs(env: dict[str, str]) -> None:
    out = run("bench/bench_alert_quality.py", "--smoke", env=env)
    result = orjson.loads(out.strip().splitlines()[-1])
    assert result["statements"] > 500
    assert result["true_stalls"] >= 1
    assert result["wheel_baseline"]["flagged"] >= 1
    assert sum(result["alerts_by_kind"].values()) >= 1
    assert result["latency"]["n"] >= 1
    assert "wheel-spinning alerts (pipeline) vs true stalls" in out
    assert "Beck & Gong" in out
    assert 0.0 <= result["ceiling_online"]["recall"] <= 1.0
    assert "ceiling, not a detector" in out


def test_e2e_bench_runs(env: dict[str, str]) -> None:
    out = run("bench/bench_e2e.py", "--smoke", env=env)
    result = orjson.loads(out.strip().splitlines()[-1])
    assert result["raw_producer_per_s"] > 0
    assert set(result["stages"]) == {"accepted", "published", "projected", "alerts applied"}
    seconds = [result["stages"][s]["seconds"] for s in result["stages"]]
    assert all(s > 0 for s in seconds)
    assert result["updates"] >= result["statements"] * 0.5
    assert "| alerts applied |" in out
    [sustained] = result["sustained"]
    assert sustained["statements"] == 1000
    assert sustained["achieved_per_s"] > 0
    assert set(sustained["stages"]) == {"accepted", "published", "projected", "alerts applied"}
    latency = sustained["latency"]
    assert latency["n"] > 0  # webhooks received through the routing config and timed
    assert 0 < latency["p50_s"] <= latency["p95_s"] <= latency["p99_s"] <= latency["max_s"]
    assert "| target /s | achieved /s |" in out


def test_progress_throughput_bench_runs(env: dict[str, str]) -> None:
    out = run(
        "bench/bench_progress_throughput.py", "--events", "5000", "--learners", "200",
        "--competencies", "5", env=env,
    )  # fmt: skip
    result = orjson.loads(out[out.index("{") :])
    assert result["raw_events_per_s"] > 0
    assert result["worker_events_per_s"] > 0
    assert "worker_vs_raw" in result


def test_run_all_writes_the_benchmarks_file(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    run(
        "bench/run_all.py", "--smoke", "--only", "bench_xapi_validation",
        "bench_mastery_accuracy", "--assistments", str(tmp_path / "missing"),
        "--output", str(target), env=env,
    )  # fmt: skip
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "Machine: " in text
    assert "load average" in text
    assert "## xAPI validation (`shared.xapi`)" in text
    assert "ratio (strict time / baseline time)" in text
    assert "**SKIPPED**: the ASSISTments data was not found" in text
    # --update replaces only the selected sections: the other keeps what it had
    marked = text.replace("ratio (strict time / baseline time)", "ratio MARKER", 1)
    target.write_text(marked, encoding="utf-8")
    run(
        "bench/run_all.py", "--smoke", "--update", "--only", "bench_mastery_accuracy",
        "--assistments", str(tmp_path / "gone"), "--output", str(target), env=env,
    )  # fmt: skip
    again = target.read_text(encoding="utf-8")
    assert "ratio MARKER" in again
    assert again.count("## Mastery model accuracy") == again.count("## xAPI validation") == 1
    assert f"found in `{tmp_path / 'gone'}`" in again
    assert "Re-run on their own: bench_mastery_accuracy" in again
    assert again.index("## xAPI validation") < again.index("## Mastery model accuracy")


def test_soak_bench_runs(env: dict[str, str]) -> None:
    out = run("bench/bench_soak.py", "--smoke", env=env)
    result = orjson.loads(out.strip().splitlines()[-1])
    assert result["sent"] == result["statements"] == 1200
    assert result["passes"] == 4  # the same learners four times, new ids (all archived below)
    assert result["warmup_passes"] == 2
    assert result["drained"] is True
    assert result["loss"] == 0
    assert result["verdict"]["nothing_lost"] is True
    # every stage counted every statement (progress updates: as many applied as published)
    counts = result["counts"]
    assert {counts[s] for s in ("accepted", "archived", "published", "projected")} == {1200}
    assert counts["updates applied by alerts"] == counts["updates published"] > 0
    assert result["steady_samples"] >= 5
    for service in ("progress", "alerts"):
        s = result["services"][service]
        assert s["lag_max"] > 0  # the broker's offsets were read (no partitions would read 0)
        assert s["lag_after_drain"] == 0
    for service in ("ingest", "progress", "alerts"):
        assert result["services"][service]["rss_start_mib"] > 10
    # the verdict line is computed from the figures (memory is not flat in 24 s of warm-up)
    assert set(result["verdict"]) == {"lag_bounded", "memory_flat", "nothing_lost"}
    assert "Verdict: lag bounded " in out
    assert "| updates applied by alerts |" in out


def test_pg_compression_bench_runs(env: dict[str, str]) -> None:
    out = run("bench/bench_pg_compression.py", "--statements", "500", "--rounds", "1", env=env)
    result = orjson.loads(out.strip().splitlines()[-1])
    assert result["statements"] == 500
    assert result["mean_body_bytes"] > 1000  # the archived bodies, not an empty stand-in
    cpu = result["best_server_cpu_s_per_1k"]
    assert set(cpu) == {"pglz", "lz4"}
    assert all(v > 0 for v in cpu.values())  # the server process really did the work
    assert "lz4 / pglz server CPU" in out
