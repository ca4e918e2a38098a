"""Estimating BKT parameters from history: EM (Baum-Welch) on the two-state HMM, per competency.

The model is the one ``mastery.py`` runs: opportunity t emits correct with ``1 - slip`` (learned)
or ``guess`` (unlearned), then moves unlearned -> learned with ``learn`` and learned -> unlearned
with ``forget`` (per opportunity). The data of one competency is one sequence of answers per
learner, in time order.

Numerics: the forward pass is scaled (each step's pair is renormalised; the log-likelihood is the
sum of the log scale factors) and the backward pass reuses those factors, so sequences of any
length neither underflow nor overflow. Identical sequences are fitted once with a multiplicity,
which on typical tutor data (many short sequences) cuts the work several times.

Identifiability: ``guess`` and ``slip`` are bounded (default <= 0.3) after every M step, which
keeps the solution on the "learned means mostly correct" side. Several random restarts (seeded,
so a fit is reproducible) guard against local optima; the best log-likelihood wins. Convergence:
the log-likelihood gains less than ``tol`` times its magnitude, or ``max_iter`` is reached.

``python -m services.progress.fitting HISTORY.jsonl [--assistments] [--ability] [-o FILE]``

``--ability`` then fits the framework's learner-ability weights with those parameters
(``ability_fit.py``) and writes them as the document's ``ability``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from services.progress.ability_fit import fit_ability
from shared.framework import AbilityParams, BktParams

_FLOOR = 1e-6  # no parameter is fitted to exactly 0 or 1 (except forget when not fitted)

Record = tuple[str, str, bool]  # competency, learner, correct


@dataclass(frozen=True, slots=True)
class FitResult:
    params: BktParams
    log_likelihood: float
    iterations: int
    converged: bool
    observations: int
    sequences: int


@dataclass(frozen=True, slots=True)
class FitOptions:
    fit_forget: bool = True
    max_guess: float = 0.3
    max_slip: float = 0.3
    restarts: int = 5
    seed: int = 0
    tol: float = 1e-6
    max_iter: int = 200


_Params = tuple[float, float, float, float, float]  # prior, learn, forget, guess, slip
_Data = list[tuple[tuple[int, ...], int]]  # distinct sequence, multiplicity


_Stats = tuple[float, float, float, float, float, float, float, float, float, float]


def _sequence(obs: tuple[int, ...], p: _Params) -> _Stats:
    """Scaled forward-backward over one sequence: its log-likelihood and expected counts.

    Returns (log-lik, P(learned) at t=0, sum gamma learned, sum gamma unlearned, expected slips,
    expected guesses, expected learn transitions, expected forget transitions, gamma learned and
    gamma unlearned summed over the opportunities that have a successor).
    """
    prior, learn, forget, guess, slip = p
    keep, stay_u = 1.0 - forget, 1.0 - learn
    e_l = (slip, 1.0 - slip)  # emission by answer (0 wrong, 1 correct), learned
    e_u = (1.0 - guess, guess)  # unlearned
    n = len(obs)
    al = [0.0] * n
    au = [0.0] * n
    cs = [0.0] * n
    pl, pu = prior, 1.0 - prior
    ll = 0.0
    for t in range(n):
        o = obs[t]
        a = pl * e_l[o]
        b = pu * e_u[o]
        c = a + b
        a /= c
        b /= c
        al[t] = a
        au[t] = b
        cs[t] = c
        ll += math.log(c)
        pl = a * keep + b * learn
        pu = a * forget + b * stay_u
    # backward, with the forward scale factors
    bl = bu = 1.0
    first_l = s_gl = s_gu = s_slip = s_guess = s_xul = s_xlu = s_fl = s_fu = 0.0
    for t in range(n - 1, -1, -1):
        gl = al[t] * bl
        gu = au[t] * bu
        norm = gl + gu
        gl /= norm
        gu /= norm
        s_gl += gl
        s_gu += gu
        if obs[t]:
            s_guess += gu
        else:
            s_slip += gl
        if t < n - 1:
            s_fl += gl
            s_fu += gu
        if t > 0:
            o = obs[t]
            c = cs[t]
            wl = e_l[o] * bl / c
            wu = e_u[o] * bu / c
            s_xul += au[t - 1] * learn * wl
            s_xlu += al[t - 1] * forget * wu
            bl = keep * wl + forget * wu
            bu = learn * wl + stay_u * wu
        else:
            first_l = gl
    return ll, first_l, s_gl, s_gu, s_slip, s_guess, s_xul, s_xlu, s_fl, s_fu


def _em_step(data: _Data, p: _Params) -> tuple[float, _Params]:
    """One E step over all sequences and the unbounded M step; returns (log-lik of ``p``, new)."""
    totals = [0.0] * 10
    n_seq = 0
    for obs, count in data:
        for i, v in enumerate(_sequence(obs, p)):
            totals[i] += count * v
        n_seq += count
    ll, first_l, g_l, g_u, slip_n, guess_n, xi_ul, xi_lu, from_l, from_u = totals
    _, learn, forget, guess, slip = p
    new = (
        first_l / n_seq,
        xi_ul / from_u if from_u > 0 else learn,
        xi_lu / from_l if from_l > 0 else forget,
        guess_n / g_u if g_u > 0 else guess,
        slip_n / g_l if g_l > 0 else slip,
    )
    return ll, new


def _bound(p: _Params, opts: FitOptions) -> _Params:
    def clip(x: float, hi: float = 1.0 - _FLOOR) -> float:
        return min(max(x, _FLOOR), hi)

    prior, learn, forget, guess, slip = p
    return (
        clip(prior),
        clip(learn),
        clip(forget, 0.5) if opts.fit_forget else 0.0,
        clip(guess, opts.max_guess),
        clip(slip, opts.max_slip),
    )


def _start(rng: random.Random, opts: FitOptions, first: bool) -> _Params:
    if first:  # a conventional starting point, then random ones
        return _bound((0.4, 0.15, 0.05, 0.15, 0.1), opts)
    return _bound(
        (
            rng.uniform(0.05, 0.9),
            rng.uniform(0.02, 0.5),
            rng.uniform(0.0, 0.2),
            rng.uniform(0.02, opts.max_guess),
            rng.uniform(0.02, opts.max_slip),
        ),
        opts,
    )


def fit_sequences(
    sequences: Iterable[Sequence[bool | int]], opts: FitOptions = FitOptions(), key: str = ""
) -> FitResult:
    """Fit one competency from one answer sequence per learner (each in time order)."""
    counts = Counter(tuple(1 if x else 0 for x in s) for s in sequences)
    data: _Data = [(s, c) for s, c in sorted(counts.items()) if s]
    if not data:
        raise ValueError(f"no observations to fit {key!r}")
    rng = random.Random(f"{opts.seed}:{key}")  # noqa: S311 - reproducible restarts, not secrets
    best: tuple[float, _Params, int, bool] | None = None
    for r in range(max(opts.restarts, 1)):
        p = _start(rng, opts, r == 0)
        prev = -math.inf
        ll, it, converged = prev, 0, False
        for it in range(1, opts.max_iter + 1):
            ll, new = _em_step(data, p)  # ll is the log-likelihood of p
            converged = ll - prev <= opts.tol * abs(ll)
            if converged or it == opts.max_iter:
                break  # keep p, not an unscored update: the reported log-likelihood is p's own
            prev, p = ll, _bound(new, opts)
        if best is None or ll > best[0]:
            best = (ll, p, it, converged)
    assert best is not None
    ll, (prior, learn, forget, guess, slip), it, converged = best
    return FitResult(
        params=BktParams(prior=prior, learn=learn, forget=forget, guess=guess, slip=slip),
        log_likelihood=ll,
        iterations=it,
        converged=converged,
        observations=sum(len(s) * c for s, c in data),
        sequences=sum(c for _, c in data),
    )


def group(records: Iterable[Record]) -> dict[str, list[list[bool]]]:
    """Records in time order -> per competency, one answer sequence per learner."""
    by: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for competency, learner, correct in records:
        by[competency][learner].append(bool(correct))
    return {c: list(learners.values()) for c, learners in by.items()}


def fit_all(records: Iterable[Record], opts: FitOptions = FitOptions()) -> dict[str, FitResult]:
    return {c: fit_sequences(seqs, opts, c) for c, seqs in sorted(group(records).items())}


# --- input formats -----------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[Record]:
    """``{"competency": ..., "learner": ..., "correct": true|false|0|1}`` per line, time order."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = orjson.loads(line)
            try:
                yield str(row["competency"]), str(row["learner"]), bool(row["correct"])
            except (KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: needs competency, learner, correct") from exc


def read_assistments(path: Path) -> Iterator[Record]:
    """The DKT split format: per learner three lines (count, skill ids, 0/1 answers)."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(lines) % 3:
        raise ValueError(f"{path}: line count is not a multiple of 3")
    for i in range(0, len(lines), 3):
        n = int(lines[i])
        skills = [s for s in lines[i + 1].split(",") if s]
        answers = [a for a in lines[i + 2].split(",") if a]
        if len(skills) != n or len(answers) != n:
            raise ValueError(f"{path}:{i + 1}: expected {n} skills and answers")
        learner = f"seq{i // 3}"
        for skill, answer in zip(skills, answers, strict=True):
            yield skill, learner, answer == "1"


# --- CLI ---------------------------------------------------------------------------------------


def _document(
    results: dict[str, FitResult], opts: FitOptions, ability: AbilityParams | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": "bkt",
        "options": {
            "fit_forget": opts.fit_forget,
            "max_guess": opts.max_guess,
            "max_slip": opts.max_slip,
            "restarts": opts.restarts,
            "seed": opts.seed,
        },
        "competencies": {
            c: {
                "bkt": r.params.model_dump(),
                "log_likelihood": r.log_likelihood,
                "iterations": r.iterations,
                "converged": r.converged,
                "observations": r.observations,
                "sequences": r.sequences,
            }
            for c, r in results.items()
        },
    }
    if ability is not None:
        doc["ability"] = ability.model_dump()
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fit", description="Fit BKT parameters per competency.")
    ap.add_argument("history", type=Path, help="JSONL of {competency, learner, correct}")
    ap.add_argument("--assistments", action="store_true", help="input is the DKT CSV format")
    ap.add_argument("-o", "--output", type=Path, help=".json or .yaml; default JSON on stdout")
    ap.add_argument("--no-forget", action="store_true", help="plain BKT: forget fixed at 0")
    ap.add_argument("--ability", action="store_true", help="also fit learner-ability weights")
    ap.add_argument("--max-guess", type=float, default=0.3)
    ap.add_argument("--max-slip", type=float, default=0.3)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=200)
    args = ap.parse_args(argv)
    opts = FitOptions(
        fit_forget=not args.no_forget,
        max_guess=args.max_guess,
        max_slip=args.max_slip,
        restarts=args.restarts,
        seed=args.seed,
        tol=args.tol,
        max_iter=args.max_iter,
    )
    reader = read_assistments if args.assistments else read_jsonl
    started = time.perf_counter()
    records = list(reader(args.history))
    results = fit_all(records, opts)
    ability = None
    if args.ability:
        ability, _, _ = fit_ability(records, {c: r.params for c, r in results.items()})
    doc = _document(results, opts, ability)
    if args.output and args.output.suffix in {".yaml", ".yml"}:
        import yaml

        text = yaml.safe_dump(doc, sort_keys=True)
    else:
        text = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    took = time.perf_counter() - started
    print(f"fitted {len(results)} competencies in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
