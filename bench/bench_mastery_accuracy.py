"""Next-response accuracy of the progress service's mastery models on ASSISTments 2009 (DKT split).

    .venv/bin/python bench/bench_mastery_accuracy.py /work/shared/data/assistments2009

Fits per skill on ``builder_train.csv`` with ``services.progress.fitting`` (EM), then streams
``builder_test.csv`` through ``services.progress.mastery.BktModel`` -- the code the service runs --
and scores the prediction each update records before it sees the answer. Models, all in one run:
BKT with forgetting (fitted), plain BKT (forget fixed at 0, fitted), and a baseline that predicts
each skill's mean correctness in train. Skills absent from train use the service's defaults.

Protocol (the same as pyBKT's ``Model.fit`` / ``Model.evaluate``): one parameter set per skill; one
answer stream per (learner sequence, skill) -- a sequence of the split is one learner; the first
prediction of a stream is ``prior * (1 - slip) + (1 - prior) * guess``; forgetting applies per
opportunity; AUC and RMSE over all test responses pooled (not a per-skill average).

Diagnostic row "BKT, uncapped P(learned)": the plain-BKT parameters run through a textbook update
on a raw probability, as pyBKT does (exact arithmetic scores the same). With ``forget = 0``,
P(learned) saturates after a streak of correct answers (1 - 1e-30, or exactly 1.0 in floats) and
later wrong answers barely move it. The service caps the log-odds at +-20 and floors ``forget`` at
1e-9 (``mastery.py``), which acts like a tiny forget: that, not a leak, is why plain BKT scores
0.81 here against the published 0.73-0.76 (pyBKT's own plain-BKT parameters score 0.810 through
``BktModel`` and 0.760 uncapped). With a fitted forget the cap is never reached.

``--pybkt-python PY`` also fits pyBKT (an interpreter with ``pyBKT``, ``pandas``, ``scikit-learn``
installed -- never the project venv) on the same files in the same run and prints its figures.
Parameter recovery: learners simulated from known parameters, fitted, error per parameter.
"""

from __future__ import annotations

import argparse
import math
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from services.progress.ability_fit import fit_ability
from services.progress.fitting import (
    FitOptions,
    FitResult,
    fit_all,
    fit_sequences,
    read_assistments,
)
from services.progress.mastery import (
    DEFAULT_BKT,
    BktModel,
    MasteryState,
    add_surprise,
    learner_ability,
)
from shared.framework import AbilityParams, BktParams

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


def bkt_stream(params: dict[str, BktParams], ability: AbilityParams | None = None) -> Predictor:
    """The service's model code, as the worker calls it (``handlers.py``): with ``ability``,
    each learner's surprise gives the ability passed to every ``initial`` and ``update``."""
    states: dict[tuple[str, str], MasteryState] = {}
    surprises: dict[str, tuple[float, float]] = {}
    models = {skill: BktModel(p, ability_params=ability) for skill, p in params.items()}
    default = BktModel(DEFAULT_BKT, ability_params=ability)

    def step(skill: str, learner: str, correct: bool) -> float:
        model = models.get(skill, default)
        surprise, weight = surprises.get(learner, (0.0, 0.0))
        z = learner_ability(surprise, weight, ability) if ability else 0.0
        state = states.get((skill, learner))
        if state is None:
            state = model.initial(z)
        state = model.update(state, correct, ability=z)
        states[skill, learner] = state
        prediction = state.last_prediction
        assert prediction is not None
        surprises[learner] = add_surprise(surprise, weight, correct, prediction)
        return prediction

    return step


def float_bkt_stream(params: dict[str, BktParams]) -> Predictor:
    """Diagnostic: BKT on a raw P(learned): no log-odds cap, no forget floor (as pyBKT)."""
    learned: dict[tuple[str, str], float] = {}

    def step(skill: str, learner: str, correct: bool) -> float:
        p = params.get(skill, DEFAULT_BKT)
        lrn = learned.get((skill, learner), p.prior)
        prediction = lrn * (1.0 - p.slip) + (1.0 - lrn) * p.guess
        post = lrn * ((1.0 - p.slip) / prediction if correct else p.slip / (1.0 - prediction))
        learned[skill, learner] = post * (1.0 - p.forget) + (1.0 - post) * p.learn
        return prediction

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


# --- parameter recovery ------------------------------------------------------------------------

RECOVERY = (  # (name, truth, fit forget?)
    ("typical+forget", BktParams(prior=0.3, learn=0.12, forget=0.04, guess=0.2, slip=0.1), True),
    ("hard+forget", BktParams(prior=0.1, learn=0.05, forget=0.02, guess=0.25, slip=0.15), True),
    ("easy, plain", BktParams(prior=0.6, learn=0.25, forget=0.0, guess=0.15, slip=0.05), False),
)


def simulate(p: BktParams, learners: int, length: int, seed: int) -> list[list[bool]]:
    rng = random.Random(seed)
    sequences = []
    for _ in range(learners):
        learned = rng.random() < p.prior
        answers = []
        for _ in range(length):
            answers.append(rng.random() < (1.0 - p.slip if learned else p.guess))
            learned = rng.random() >= p.forget if learned else rng.random() < p.learn
        sequences.append(answers)
    return sequences


def recovery(learners: int, length: int, restarts: int, seed: int) -> None:
    names = ("prior", "learn", "forget", "guess", "slip")
    print(f"parameter recovery: {learners} simulated learners x {length} opportunities per set")
    print(f"{'set':<16}{'':<7}" + "".join(f"{n:>8}" for n in names) + f"{'fit s':>8}")
    for i, (label, truth, forget) in enumerate(RECOVERY):
        data = simulate(truth, learners, length, seed + i)
        started = time.perf_counter()
        opts = FitOptions(fit_forget=forget, restarts=restarts, seed=seed)
        got = fit_sequences(data, opts, label).params
        took = time.perf_counter() - started
        t, g = truth.model_dump(), got.model_dump()
        print(f"{label:<16}{'true':<7}" + "".join(f"{t[n]:>8.3f}" for n in names))
        print(f"{'':<16}{'fitted':<7}" + "".join(f"{g[n]:>8.3f}" for n in names) + f"{took:>8.1f}")
        print(f"{'':<16}{'|err|':<7}" + "".join(f"{abs(g[n] - t[n]):>8.3f}" for n in names))


# --- pyBKT beside it (separate interpreter) ----------------------------------------------------

_PYBKT = """
import sys, time, warnings
import numpy as np, pandas as pd
from pyBKT.models import Model
from sklearn.metrics import mean_squared_error, roc_auc_score
warnings.filterwarnings("ignore")
def frame(path):
    lines = [ln.strip() for ln in open(path, encoding="utf-8") if ln.strip()]
    rows = []
    for i in range(0, len(lines), 3):
        skills = [s for s in lines[i + 1].split(",") if s]
        answers = [a for a in lines[i + 2].split(",") if a]
        rows += [(i // 3, s, int(a)) for s, a in zip(skills, answers)]
    return pd.DataFrame(rows, columns=["user_id", "skill_name", "correct"])
data_dir, fits, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
train, test = frame(data_dir + "/builder_train.csv"), frame(data_dir + "/builder_test.csv")
test = test[test.skill_name.isin(set(train.skill_name))]  # pyBKT cannot predict unfitted skills
for forgets in (True, False):
    started = time.perf_counter()
    model = Model(seed=seed, num_fits=fits, parallel=False)
    model.fit(data=train.copy(), forgets=forgets)
    took = time.perf_counter() - started
    out = model.predict(data=test.copy())
    y, p = out["correct"].to_numpy(), out["correct_predictions"].to_numpy()
    rmse = float(np.sqrt(mean_squared_error(y, p)))
    print(f"{forgets}\t{roc_auc_score(y, p)}\t{rmse}\t{took}\t{len(y)}", flush=True)
"""


def pybkt(python: str, data_dir: Path, fits: int, seed: int) -> list[tuple[str, float, float]]:
    """pyBKT's own fit and predictions on the same files: (name, AUC, RMSE) per model."""
    cmd = [python, "-c", _PYBKT, str(data_dir), str(fits), str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        forgets, auc_, rmse_, took, n = line.split("\t")
        name = "pyBKT BKT+forgets" if forgets == "True" else "pyBKT BKT"
        print(f"fit {name}: {fits} fits, {float(took):.1f} s; scored on {n} responses")
        rows.append((name, float(auc_), float(rmse_)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pybkt-python", help="an interpreter with pyBKT: fit it beside ours")
    ap.add_argument("--pybkt-fits", type=int, default=5, help="pyBKT's num_fits (restarts)")
    ap.add_argument("--recovery-learners", type=int, default=500, help="0 skips recovery")
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
        ll = sum(r.log_likelihood for r in fits[name].values())
        stuck = sum(not r.converged for r in fits[name].values())
        print(
            f"fit {name}: {len(fits[name])} skills, {args.restarts} restarts, {took:.1f} s; "
            f"train log-lik {ll:.1f}, {stuck} skills at max_iter"
        )

    forgetting = {s: r.params for s, r in fits["BKT+forgetting"].items()}
    started = time.perf_counter()
    ability, ll_off, ll_on = fit_ability(train, forgetting)
    took = time.perf_counter() - started
    print(
        f"fit learner ability on BKT+forgetting: {took:.1f} s; prior weight "
        f"{ability.prior_weight:.2f}, learn weight {ability.learn_weight:.2f}, pseudo-count "
        f"{ability.pseudo_count:.2f}; train log-lik {ll_off:.1f} -> {ll_on:.1f}"
    )
    predictors: dict[str, Predictor] = {"BKT+forgetting+ability": bkt_stream(forgetting, ability)}
    predictors |= {
        name: bkt_stream({s: r.params for s, r in fit.items()}) for name, fit in fits.items()
    }
    predictors["BKT, uncapped P(learned)"] = float_bkt_stream(
        {s: r.params for s, r in fits["BKT"].items()}
    )
    predictors["baseline (skill mean)"] = baseline(train)
    external = (
        pybkt(args.pybkt_python, args.data_dir, args.pybkt_fits, args.seed)
        if (args.pybkt_python)
        else []
    )
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
    for name, auc_, rmse_ in external:
        print(f"{name:<24}{auc_:>8.4f}{rmse_:>8.4f}{'-':>10}{'-':>11}")
    if args.recovery_learners > 0:
        recovery(args.recovery_learners, 30, args.restarts, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
