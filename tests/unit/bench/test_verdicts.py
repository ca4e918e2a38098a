"""The verdict lines ``bench/run_all.py`` writes (``bench/verdicts.py``): ingest, validation,
mastery accuracy."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import verdicts

SINGLE = "HTTP, 1 statement per POST, 16 in flight"
BATCHED = "HTTP, batches of 100, 4 in flight"
KAFKA = "Kafka raw-topic intake (incl. start-up)"
NOTHING = "Ralph LRS 5.1.0, storing nothing: "


def _ingest(rates: dict[str, float]) -> str:
    return verdicts.ingest_verdict("| table |\n" + orjson.dumps(rates).decode())


def test_ingest_targets_and_the_ralph_multiples() -> None:
    verdict = _ingest(
        {
            SINGLE: 704,
            BATCHED: 2_482,
            KAFKA: 1_695,
            NOTHING + "1 statement per POST, 16 in flight": 487,
            NOTHING + "batches of 100, 4 in flight": 4_273,
        }
    )
    assert "HTTP, batches of 100, 4 in flight: not met (2,482 of 10,000)" in verdict
    # 2,000 / 1,443 = 1.39x; 704 / 487 = 1.45x
    assert "the target is 1.39x Ralph's rate in the issue, ingest 1.45x" in verdict
    assert "1.45x Ralph's in this run (at or above that multiple)" in verdict
    # 10,000 / 10,805 = 0.93x; 2,482 / 4,273 = 0.58x
    assert "ingest 0.58x Ralph's in this run (below that multiple)" in verdict


def test_without_ralph_rows_no_multiple_is_claimed() -> None:
    verdict = _ingest({SINGLE: 2_100, BATCHED: 10_500, KAFKA: 19_000})
    assert "1 statement per POST, 16 in flight: met (2,100 of 2,000)" in verdict
    assert "Kafka raw-topic intake (incl. start-up): not met (19,000 of 20,000)" in verdict
    assert "Ralph" not in verdict


def test_the_kafka_target_is_read_against_the_measured_cpu_floor() -> None:
    rates = orjson.dumps({SINGLE: 1_100, BATCHED: 4_300, KAFKA: 3_500}).decode()

    def floor(us: str, most: str) -> str:
        row = f"| **Kafka intake floor**: validation + producer + consumer | {us} | {most} |"
        return verdicts.ingest_verdict(f"| table |\n{row}\n{rates}")

    below = floor("57.1", "17,513")
    assert "cost 57.1 µs, so one process built on aiokafka takes at most 17,513/s" in below
    assert "the 20,000/s target is above that." in below
    assert "the 20,000/s target is within that." in floor("40.0", "25,000")
    assert "CPU floor" not in _ingest({SINGLE: 1_100})  # no floor measured: nothing said


def test_validation_verdict_with_and_without_ralph() -> None:
    ours = "shared.xapi.parse_statement:             13,900 statements/s\n"
    ralph = "Ralph 5.1.0 BaseXapiStatement:            2,259 statements/s\n"
    alone = verdicts.xapi_verdict(ours)
    assert "**not met** in this run (about 56% of it)" in alone
    assert "Ralph" not in alone
    both = verdicts.xapi_verdict(ours + ralph)
    # 25,000 / 7,600 = 3.29x; 13,900 / 2,259 = 6.15x
    assert "the target is 3.29x Ralph's rate in the issue, ours 6.15x" in both
    assert "(at or above that multiple)" in both


MASTERY = """model                        AUC    RMSE  stream s   events/s
BKT+forgetting+ability  {with_:.4f}  0.3853      1.17     100452
BKT+forgetting            0.8261  0.3878      0.85     137758
BKT                       0.8089  0.3963      0.65     180232
"""


def test_mastery_verdict_names_the_model_that_reached_the_target_and_the_plain_figure() -> None:
    met = verdicts.mastery_verdict(MASTERY.format(with_=0.8308))
    assert "met by BKT with forgetting and learner ability (0.8308)" in met
    assert "BKT with forgetting alone 0.8261" in met
    missed = verdicts.mastery_verdict(MASTERY.format(with_=0.8299))
    assert "**not met yet** (0.8299)" in missed
    worse = verdicts.mastery_verdict(MASTERY.format(with_=0.8200))
    assert "**not met yet** (0.8261)" in worse  # the better of the two is reported
    assert verdicts.mastery_verdict("no table") == ""


def _progress(**figures: float) -> str:
    body = {"events": 50_000, "worker_events_per_s": 5_506, "raw_events_per_s": 213_402}
    return verdicts.progress_verdict("starting\n" + orjson.dumps({**body, **figures}).decode())


def test_progress_targets_and_the_faust_ceiling() -> None:
    verdict = _progress(faust_noop_events_per_s=15_092, faust_noop_cpu_s_per_1k_events=0.056)
    assert "**not met** (5,506/s, 2.6% of 213,402/s)" in verdict
    # 1,000 / 0.056 = 17,857/s = 8.4% of the raw loop: below 40% whatever the agent does
    assert "an agent passes at most 17,857/s on one core, 8.4% of the raw loop" in verdict
    assert verdict.endswith("so no Faust agent can meet the 40% target here.")
    # a ceiling above 40% of raw is only stated, never called a reason
    fast = _progress(faust_noop_events_per_s=90_000, faust_noop_cpu_s_per_1k_events=0.01)
    assert fast.endswith("46.9% of the raw loop.")


def test_progress_met_and_without_the_faust_floor() -> None:
    verdict = _progress(worker_events_per_s=90_000)
    assert verdict == (
        "Targets: ≥ 10,000 events/s and ≥ 40% of the raw loop's rate: met "
        "(90,000/s, 42.2% of 213,402/s)."
    )
    assert verdicts.progress_verdict("no JSON here") == ""
