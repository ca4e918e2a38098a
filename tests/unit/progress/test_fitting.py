"""EM fitting: parameter recovery on simulated learners, bounds, determinism, the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from services.progress.fitting import (
    FitOptions,
    _em_step,
    fit_all,
    fit_sequences,
    main,
    read_assistments,
)
from shared.framework import BktParams

TRUE = BktParams(prior=0.3, learn=0.12, forget=0.04, guess=0.2, slip=0.1)


def simulate(params: BktParams, learners: int, length: int, seed: int) -> list[list[bool]]:
    rng = random.Random(seed)
    sequences = []
    for _ in range(learners):
        learned = rng.random() < params.prior
        answers = []
        for _ in range(length):
            p = 1.0 - params.slip if learned else params.guess
            answers.append(rng.random() < p)
            learned = rng.random() >= params.forget if learned else rng.random() < params.learn
        sequences.append(answers)
    return sequences


@pytest.fixture(scope="module")
def simulated() -> list[list[bool]]:
    return simulate(TRUE, learners=500, length=30, seed=7)


def test_recovers_known_parameters_with_forgetting(simulated: list[list[bool]]) -> None:
    result = fit_sequences(simulated, FitOptions(restarts=2, seed=1), "skill")
    got = result.params
    assert got.prior == pytest.approx(TRUE.prior, abs=0.06)
    assert got.learn == pytest.approx(TRUE.learn, abs=0.04)
    assert got.forget == pytest.approx(TRUE.forget, abs=0.02)
    assert got.guess == pytest.approx(TRUE.guess, abs=0.04)
    assert got.slip == pytest.approx(TRUE.slip, abs=0.03)
    assert result.observations == 500 * 30
    assert result.sequences == 500
    # EM found at least as likely a solution as the truth
    data = [(tuple(int(x) for x in s), 1) for s in simulated]
    truth = (TRUE.prior, TRUE.learn, TRUE.forget, TRUE.guess, TRUE.slip)
    assert result.log_likelihood >= _em_step(data, truth)[0] - 1e-6


def test_plain_bkt_recovers_parameters_with_forget_fixed_at_zero() -> None:
    plain = BktParams(prior=0.25, learn=0.2, forget=0.0, guess=0.15, slip=0.1)
    sequences = simulate(plain, learners=400, length=20, seed=3)
    got = fit_sequences(sequences, FitOptions(fit_forget=False, restarts=2), "k").params
    assert got.forget == 0.0
    assert got.prior == pytest.approx(plain.prior, abs=0.06)
    assert got.learn == pytest.approx(plain.learn, abs=0.05)
    assert got.guess == pytest.approx(plain.guess, abs=0.04)
    assert got.slip == pytest.approx(plain.slip, abs=0.03)


def test_guess_and_slip_stay_within_their_bounds() -> None:
    # answers unrelated to any learning: EM would like guess and slip near 0.5
    rng = random.Random(11)
    noise = [[rng.random() < 0.5 for _ in range(15)] for _ in range(100)]
    opts = FitOptions(max_guess=0.25, max_slip=0.2, restarts=2, max_iter=50)
    got = fit_sequences(noise, opts, "noise").params
    assert got.guess <= 0.25
    assert got.slip <= 0.2


def test_same_seed_same_fit_and_long_sequences_do_not_underflow() -> None:
    sequences = simulate(TRUE, learners=10, length=1_000, seed=5)
    opts = FitOptions(restarts=2, seed=42, max_iter=10)
    first = fit_sequences(sequences, opts, "long")
    assert first == fit_sequences(sequences, opts, "long")
    assert -1e9 < first.log_likelihood < 0.0


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no observations"):
        fit_sequences([[], []])


def test_fit_all_groups_records_by_competency_and_learner() -> None:
    records = [("a", "l1", True), ("b", "l1", False), ("a", "l2", True), ("a", "l1", False)]
    results = fit_all(records, FitOptions(restarts=1, max_iter=5))
    assert sorted(results) == ["a", "b"]
    assert (results["a"].observations, results["a"].sequences) == (3, 2)


def test_cli_writes_json_and_yaml(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    rows = [
        {"competency": c, "learner": f"u{i}", "correct": x}
        for i, seq in enumerate(simulate(TRUE, 30, 8, seed=2))
        for c in ("ds.python", "ds.sql")
        for x in seq
    ]
    history.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "params.json"
    assert main([str(history), "-o", str(out), "--restarts", "1", "--max-iter", "20"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc["competencies"]) == {"ds.python", "ds.sql"}
    BktParams.model_validate(doc["competencies"]["ds.sql"]["bkt"])
    out_yaml = tmp_path / "params.yaml"
    assert main([str(history), "-o", str(out_yaml), "--no-forget", "--restarts", "1"]) == 0
    doc = yaml.safe_load(out_yaml.read_text(encoding="utf-8"))
    assert doc["competencies"]["ds.python"]["bkt"]["forget"] == 0.0


def test_reads_the_assistments_split_format(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("3\n7,7,9,\n1,0,1,\n1\n9,\n0,\n", encoding="utf-8")
    assert list(read_assistments(path)) == [
        ("7", "seq0", True),
        ("7", "seq0", False),
        ("9", "seq0", True),
        ("9", "seq1", False),
    ]
    out = tmp_path / "p.json"
    assert main([str(path), "--assistments", "-o", str(out), "--restarts", "1"]) == 0
    assert set(json.loads(out.read_text(encoding="utf-8"))["competencies"]) == {"7", "9"}
    path.write_text("2\n7,\n1,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 2"):
        list(read_assistments(path))


def test_reported_log_likelihood_is_that_of_the_returned_parameters() -> None:
    # also when EM stops at max_iter before converging
    sequences = simulate(TRUE, learners=60, length=12, seed=9)
    data = [(tuple(int(x) for x in s), 1) for s in sequences]
    for max_iter in (1, 3, 200):
        result = fit_sequences(sequences, FitOptions(restarts=2, max_iter=max_iter), "ll")
        p = result.params
        own = _em_step(data, (p.prior, p.learn, p.forget, p.guess, p.slip))[0]
        assert result.log_likelihood == pytest.approx(own, rel=1e-12)
        assert result.iterations <= max_iter
