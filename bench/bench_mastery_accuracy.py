"""Next-response accuracy of the progress service's mastery models on ASSISTments 2009 (DKT split).

    .venv/bin/python bench/bench_mastery_accuracy.py /work/shared/data/assistments2009

Fits per skill on ``builder_train.csv`` with ``services.progress.fitting`` (EM), then streams
``builder_test.csv`` through ``services.progress.mastery.BktModel`` -- the code the service runs --
and scores the prediction each update records before it sees the answer. Models, all in one run:
BKT with forgetting (fitted), plain BKT (forget fixed at 0, fitted), and a baseline that predicts
each skill's mean correctness in train. Skills absent from train use the service's defaults.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from services.progress.fitting import FitOptions, FitResult, fit_all, read_assistments
from services.progress.mastery import DEFAULT_BKT, BktModel, MasteryState
from shared.framework import BktParams

Predictor = Callable[[str, str, bool], float]  # (skill, learner, answer) -> P(correct) before it


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve via the rank-sum statistic; tied scores get their mean rank."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mean_rank = (i + j) / 2.0 + 1.0  # ranks are 1-based
        for k in range(i, j + 1):
            ranks[order[k]] = mean_rank
        i = j + 1
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        raise ValueError("AUC needs both classes")
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def rmse(labels: Sequence[bool], scores: Sequence[float]) -> float:
    total = sum((float(y) - p) ** 2 for y, p in zip(labels, scores, strict=True))
    return math.sqrt(total / len(labels))


def bkt_stream(params: dict[str, BktParams]) -> Predictor:
    states: dict[tuple[str, str], MasteryState] = {}
    models = {skill: BktModel(p) for skill, p in params.items()}
    default = BktModel(DEFAULT_BKT)

    def step(skill: str, learner: str, correct: bool) -> float:
        model = models.get(skill, default)
        state = states.get((skill, learner))
        if state is None:
            state = model.initial()
        state = model.update(state, correct)
        states[skill, learner] = state
        assert state.last_prediction is not None
        return state.last_prediction

    return step


def baseline(train: list[tuple[str, str, bool]]) -> Predictor:
    seen: dict[str, list[int]] = {}
    for skill, _, correct in train:
        seen.setdefault(skill, [0, 0])
        seen[skill][0] += int(correct)
        seen[skill][1] += 1
    overall = sum(c for c, _ in seen.values()) / sum(n for _, n in seen.values())
    means = {s: c / n for s, (c, n) in seen.items()}
    return lambda skill, _learner, _correct: means.get(skill, overall)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    train = list(read_assistments(args.data_dir / "builder_train.csv"))
    test = list(read_assistments(args.data_dir / "builder_test.csv"))
    print(f"train: {len(train)} responses; test: {len(test)} responses")

    fits: dict[str, dict[str, FitResult]] = {}
    for name, forget in (("BKT+forgetting", True), ("BKT", False)):
        started = time.perf_counter()
        opts = FitOptions(fit_forget=forget, restarts=args.restarts, seed=args.seed)
        fits[name] = fit_all(train, opts)
        took = time.perf_counter() - started
        print(f"fit {name}: {len(fits[name])} skills, {args.restarts} restarts, {took:.1f} s")

    predictors: dict[str, Predictor] = {
        name: bkt_stream({s: r.params for s, r in fit.items()}) for name, fit in fits.items()
    }
    predictors["baseline (skill mean)"] = baseline(train)
    labels = [c for _, _, c in test]
    print(f"{'model':<24}{'AUC':>8}{'RMSE':>8}{'stream s':>10}{'events/s':>11}")
    for name, predictor in predictors.items():
        started = time.perf_counter()
        scores = [predictor(s, learner, c) for s, learner, c in test]
        took = time.perf_counter() - started
        rate = len(test) / took
        print(
            f"{name:<24}{auc(labels, scores):>8.4f}{rmse(labels, scores):>8.4f}"
            f"{took:>10.2f}{rate:>11.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
