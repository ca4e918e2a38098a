"""What ``make bench`` runs (``bench/run_all.py``): each benchmark script with its section's
title and explanatory text in ``BENCHMARKS.md``, its arguments (full and ``--smoke``), the
baselines it takes (Ralph's LRS, pyBKT) and the verdict read from its output
(``bench/verdicts.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from verdicts import (
    e2e_verdict,
    ingest_verdict,
    mastery_verdict,
    progress_verdict,
    soak_verdict,
    xapi_verdict,
)


@dataclass
class Bench:
    script: str
    title: str
    intro: str
    args: list[str] = field(default_factory=list)
    smoke: list[str] = field(default_factory=list)
    verdict: Callable[[str], str] | None = None
    timeout: float = 3600.0
    ralph: bool = False  # takes --ralph-python (Ralph's LRS as a baseline, bench/ralph_lrs.py)
    pybkt: bool = False  # takes --pybkt-python (pyBKT as a reference, bench/pybkt_venv.py)

    @property
    def name(self) -> str:
        return Path(self.script).stem


def benches(assistments: Path) -> list[Bench]:
    return [
        Bench(
            "bench/bench_xapi_validation.py",
            "xAPI validation (`shared.xapi`)",
            "20,000 statements, best of 5. Baseline: `orjson.loads` + `TypeAdapter(dict)` (no "
            "rules). Second baseline: Ralph's strict statement model (ralph-malph 5.1.0, "
            "`BaseXapiStatement.model_validate(json.loads(...))`, in its own venv made by "
            "`make ralph-venv`; a statement it rejects counts as validated). Subject: "
            "`shared.xapi.parse_statement`, every rule, 1.0.3.",
            smoke=["200", "1", "--no-ralph"],
            verdict=xapi_verdict,
            ralph=True,
        ),
        Bench(
            "bench/bench_mastery_accuracy.py",
            "Mastery model accuracy (`services/progress/mastery.py`)",
            "ASSISTments 2009-2010 skill-builder, the DKT train/test split (408k training "
            "responses, 118k test responses, 123 skills). Parameters fitted per skill by EM on "
            "the training file (`services/progress/fitting.py`, 3 restarts), then the "
            "framework's learner-ability weights with those parameters "
            "(`services/progress/ability_fit.py`, the `ability` option of a framework: a "
            "learner's answers so far above or below the model's predictions shift the prior of "
            "each competency they start and their learn rate); the test file is streamed "
            "through the same `BktModel` and learner bookkeeping the service runs, each response "
            "predicted before it is seen. Nothing is tuned on the test file. Baseline: per-skill "
            "mean correctness. Published on this split: BKT 0.73-0.76, BKT with forgetting 0.83 "
            "(Khajah et al., 2016). Reference: pyBKT 1.4.3 fitted on the same files in the same "
            "run (its own venv, `bench/pybkt_venv.py`). Our plain BKT scores above pyBKT's "
            "because mastery's log-odds are capped at +/-20 (a tiny effective forget).",
            args=[str(assistments)],
            smoke=[str(assistments), "--restarts", "1", "--recovery-learners", "0"],
            verdict=mastery_verdict,
            pybkt=True,
        ),
        Bench(
            "bench/bench_ingest.py",
            "Ingest throughput (`services/ingest`)",
            "One `python -m services.ingest` process; a statement counts once it is archived in "
            "PostgreSQL and its outbox row is marked published (Kafka acknowledged it). "
            "Statements from the classroom simulator. Runs: 3,000 single, 20,000 batched, "
            "20,000 via Kafka; baseline: a plain aiokafka producer sending the same bytes. "
            "Baseline: Ralph's LRS (ralph-malph 5.1.0, FastAPI, in its own venv made by "
            "`make ralph-venv`) on the same statement bytes with the same clients, one uvicorn "
            "process (one worker) per backend, HTTP Basic credentials from `ralph auth`: its "
            "filesystem backend, set to append (as released it creates its file on the first "
            "POST and answers 500 to every later one), and the same backend storing nothing "
            "(only its file write replaced by a discard; `bench/ralph_lrs.py`). Ralph's rows "
            "count a statement once Ralph answered 200; the answers and the file's lines are "
            "checked below the table. "
            "The server process's CPU seconds per 1,000 statements (from /proc; for the Kafka "
            "run, the process's whole life, and for its steady state the life after it "
            "answered ready) are steadier than the rates on a shared machine. "
            "Below them, the CPU floor: what validating, producing and consuming each "
            "statement costs in the bench process, nothing else counted, and the rate one "
            "core allows at that cost.",
            smoke=["--smoke"],
            verdict=ingest_verdict,
            ralph=True,
        ),
        Bench(
            "bench/bench_pg_compression.py",
            "PostgreSQL compression of archived statements (`services/*/migrations`)",
            "The server CPU of storing the same statements as ingest does (archive row with the "
            "jsonb body, outbox row with the envelope, 50 per transaction) into tables compressed "
            "with pglz (PostgreSQL's default) and with lz4 (what the migrations ask for), the "
            "methods alternating round by round; CPU of the server process serving the "
            "connection, per 1,000 statements. Baseline: pglz in the same run.",
            smoke=["--statements", "500", "--rounds", "1"],
        ),
        Bench(
            "bench/bench_progress_throughput.py",
            "Progress throughput (`services/progress`)",
            "One progress worker (Faust agent, changelog-backed table, updates published, "
            "PostgreSQL projection with watermarks) next to a raw aiokafka consume loop over the "
            "same topic in the same run (`worker_vs_raw`), and the memory per learner x "
            "competency extrapolated to 100,000 learners x 20 competencies.",
            smoke=["--events", "5000", "--learners", "200", "--competencies", "5"],
            verdict=progress_verdict,
        ),
        Bench(
            "bench/bench_alert_quality.py",
            "Alert quality and end-to-end latency (`services/alerts`)",
            "The classroom simulator's statements (known truth: stalls, archetypes, drop-outs) "
            "go through the real pipeline, as fast as ingest takes them; the alerts are matched "
            "to the truth by learner key and competency. Baseline in the same run: the classic "
            "Beck & Gong 10-attempt wheel-spinning rule computed offline on the same statements. "
            "A true stall is 10 consecutive attempts made while the competency was truly "
            "unknown, so a negative delay means the alert came before the truth called it a "
            "stall.",
            # a held-out cohort: the wheel-spinning defaults were tuned on seed 101 (and 7 before)
            args=["--learners", "100", "--days", "30", "--seed", "2027"],
            smoke=["--smoke"],
        ),
        Bench(
            "bench/alert_replay.py",
            "Wheel-spinning across cohorts (the services' code replayed offline)",
            "Nine simulated cohorts (30 days each) through the services' own pure code without "
            "the I/O -- ingest's `prepare`, progress's `Processor`, alerts' detectors and "
            "lifecycle -- and the alerts matched to the truth as in the alert-quality section (on "
            "seed 2027 the replay gave the same figures as the pipeline run). Both wheel-spinning "
            "methods side by side: the default stall probability and the attempts count it "
            "replaced, with the Beck & Gong rule as the baseline in the same run, and the Bayes "
            "ceiling (`bench/stall_ceiling.py`) on each cohort. The defaults were chosen on seeds "
            "101 and 102; the other seven cohorts judge them, one by one and pooled.",
            args=[
                "--compare",
                *("--cohort", "101:400", "--cohort", "102:400", "--cohort", "103:400"),
                *("--cohort", "104:400", "--cohort", "105:400"),
                *("--cohort", "2027:100", "--cohort", "2028:100", "--cohort", "2029:100"),
                *("--cohort", "2030:100"),
            ],
            smoke=["--compare", "--cohort", "5:16", "--days", "12"],
        ),
        Bench(
            "bench/bench_e2e.py",
            "End-to-end pipeline: throughput and latency (simulator -> ingest -> progress -> "
            "alerts -> webhook)",
            "Flood: the classroom simulator's statements POSTed in event-time order as fast as "
            "ingest takes them (batches of 250, one request in flight); each stage timed from the "
            "first POST to the last statement passing it, from the services' own counters. "
            "Baseline: a plain aiokafka producer sending the same bytes in the same run. "
            "Sustained: a fresh pipeline per target rate, statements POSTed at that steady rate "
            "(batches every 50 ms, two requests in flight per tenant, each learner in one lane), "
            "a webhook receiver in the benchmark subscribed through the alerts routing config; "
            "per delivered webhook the latency from the POST carrying the statement that caused "
            "it (the alert event's `cause_statement_id`) answered to the webhook received, and "
            "whether each stage kept up (its backlog sampled from the services' counters); the "
            "CPU each component spent per 1,000 statements. Two rates: 300/s (below what the "
            "machine's cores can carry) and 1,000/s (the target). Target: p99 < 1 s at 1,000 "
            "statements/s sustained.",
            args=["--learners", "100", "--days", "30", "--rate", "300", "1000", "--seconds", "60"],
            smoke=["--smoke"],
            verdict=e2e_verdict,
        ),
        Bench(
            "bench/bench_soak.py",
            "Soak: steady rate through the whole pipeline (ingest -> progress -> alerts)",
            "The three services as processes, fed the classroom simulator's statements at a "
            "steady 200 statements/s for 8 minutes (one request in flight per tenant): four "
            "passes over one cohort, each pass after the first sending the same learners' "
            "statements again with new ids and later timestamps, so the population is fixed. "
            "The first two passes are the warm-up: the first creates every learner x "
            "competency state, the second fills the bounded windows the first left part-full "
            "(alerts keep each competency's last 20 attempts). Every 5 s: consumer lag of "
            "progress and alerts from the broker (end offsets minus the Faust groups' committed "
            "offsets) and each process's resident memory (VmRSS). Steady state is the last two "
            "passes; the RSS slope is a least-squares fit over it (the warm-up's slope, while "
            "state is created, is "
            "shown next to it). At the end every statement is counted at each stage (accepted, "
            "archived, published, projected; progress updates published vs applied by alerts). "
            "The verdict is computed: lag bounded (its least-squares slope at most 2 % of the "
            "input rate, and 0 after the drain), memory flat (slope at most 1 MiB/min or 1 % "
            "of RSS per minute), nothing lost. Baseline: the same run's start of steady state.",
            smoke=["--smoke"],
            verdict=soak_verdict,
        ),
    ]
