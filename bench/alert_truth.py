"""The simulator's ground truth and how alerts are matched to it: shared by the alert-quality
benchmark (``bench_alert_quality.py``, the real pipeline) and its offline replay
(``alert_replay.py``, the services' pure code).

* :func:`read_truth`: the simulator's ``truth.jsonl`` by learner key (computed from the actor
  IFIs with ``shared.identity.learner_key`` and the services' salt) and competency: archetypes,
  true parameters, every attempt (and whether it was gamed), the first true stall per pair (10
  consecutive attempts while the competency was truly unknown) and drop-outs;
* :func:`match_wheel` and :func:`detection`: wheel-spinning alerts against true stalls
  (precision, recall, delay in hours and attempts); a stall is matched to the first alert on
  its pair still open when its run of unknown attempts began;
* :func:`beck_gong`: the classic 10-attempt rule, the baseline;
* :func:`ceiling_of`, :func:`ceiling_figures`: the Bayes ceiling of ``stall_ceiling.py`` (an
  upper bound, not a detector);
* :func:`per_learner`, :func:`vs_dropouts`: per-learner figures for the other detectors.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any, get_args

import orjson
from stall_ceiling import ONLINE_EARLY, ONLINE_LATE, Attempt, Ceiling, ceiling, hindsight

from shared.alert_events import AlertKind
from shared.identity import IfiKind, learner_key
from tools.simulator.learners import Params
from tools.simulator.simulate import Simulation

Pair = tuple[str, str]  # (learner key, competency)
KINDS = get_args(AlertKind)
ARCHETYPES = ("fast", "typical", "wheel-spinner", "gamer", "drop-out")


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def key_of(ref: str, salt: str) -> str:
    """Learner key of a truth ``learner`` reference (``account:<home>|<name>`` or ``mbox:...``)."""
    kind, _, value = ref.partition(":")
    assert kind in {"account", "mbox", "mbox_sha1sum", "openid"}, ref
    ifi: IfiKind = kind  # type: ignore[assignment]
    return learner_key(ifi, value, salt)


@dataclass
class Truth:
    archetype: dict[str, str]  # learner key -> archetype
    stalls: dict[Pair, datetime]  # first true stall per pair
    stall_index: dict[Pair, int]  # its attempt number on that competency (1-based)
    stall_start: dict[Pair, datetime]  # the first of its 10 unknown attempts
    attempts: dict[Pair, list[tuple[datetime, bool]]]  # every attempt: (time, correct)
    dropouts: dict[str, datetime]
    gamed: dict[Pair, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    params: dict[str, dict[str, Params]] = field(default_factory=dict)  # true, per competency


def read_truth(sim: Simulation, truth_path: Path, salt: str) -> Truth:
    correct: dict[str, bool] = {}
    for event in sim.events:
        result = event.statement.get("result")
        if isinstance(result, dict) and "success" in result:
            correct[str(event.statement["id"])] = bool(result["success"])
    keys: dict[str, str] = {}
    truth = Truth({}, {}, {}, {}, defaultdict(list), {})
    stall_ids: dict[Pair, str] = {}
    index_of: dict[str, int] = {}
    with truth_path.open("rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            ref = rec.get("learner")
            if ref is not None and ref not in keys:
                keys[ref] = key_of(ref, salt)
            match rec["kind"]:
                case "learner":
                    truth.archetype[keys[ref]] = rec["archetype"]
                    truth.params[keys[ref]] = {c: Params(**v) for c, v in rec["params"].items()}
                case "state":
                    pair = (keys[ref], rec["competency"])
                    sid = rec["statement_id"]
                    truth.attempts[pair].append((ts(rec["timestamp"]), correct.get(sid, False)))
                    truth.gamed[pair].append(rec["gamed"])
                    index_of[sid] = len(truth.attempts[pair])
                case "stall":
                    pair = (keys[ref], rec["competency"])
                    if pair not in truth.stalls:
                        truth.stalls[pair] = ts(rec["timestamp"])
                        stall_ids[pair] = rec["statement_id"]
                case "dropout":
                    truth.dropouts.setdefault(keys[ref], ts(rec["timestamp"]))
    for pair, sid in stall_ids.items():
        index = truth.stall_index[pair] = index_of.get(sid, 10)
        truth.stall_start[pair] = truth.attempts[pair][max(0, index - 10)][0]
    return truth


def beck_gong(
    attempts: dict[Pair, list[tuple[datetime, bool]]],
) -> dict[Pair, tuple[datetime, int]]:
    """Pairs flagged by the 10-attempt rule: (time, attempt number) of the 10th attempt made
    without 3 correct in a row before it."""
    flagged = {}
    for pair, seq in attempts.items():
        run = 0
        for n, (at, ok) in enumerate(seq, start=1):
            run = run + 1 if ok else 0
            if run >= 3:
                break
            if n == 10:
                flagged[pair] = (at, n)
                break
    return flagged


def attempt_number(seq: list[tuple[datetime, bool]], at: datetime) -> int:
    """Attempts on a competency made at or before ``at``."""
    return bisect.bisect_right([t for t, _ in seq], at)


def match_wheel(
    wheel: dict[Pair, tuple[datetime, int]],
    stale: set[Pair],
    pair: Pair,
    first: datetime,
    resolved: datetime | None,
    truth: Truth,
) -> None:
    """Take one wheel-spinning alert row (rows in ``first_seen_at`` order) into ``wheel``: per
    pair the first alert still open when the pair's stall began (``stale``: none was yet)."""
    if pair in wheel and pair not in stale:
        return
    start = truth.stall_start.get(pair)
    late = start is not None and resolved is not None and resolved < start
    if pair in wheel and late:
        return
    wheel[pair] = (first, attempt_number(truth.attempts.get(pair, []), first))
    if late:
        stale.add(pair)
    else:
        stale.discard(pair)


def ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def hit_delays(
    flagged: dict[Pair, tuple[datetime, int]], truth: Truth, stale: frozenset[Pair] = frozenset()
) -> list[int]:
    """Per true stall detected: the alert's attempt number minus the stall's (negative: the
    alert came first)."""
    return [
        flagged[p][1] - truth.stall_index[p]
        for p in flagged
        if p in truth.stalls and p not in stale
    ]


def detection(
    flagged: dict[Pair, tuple[datetime, int]], truth: Truth, stale: frozenset[Pair] = frozenset()
) -> dict[str, Any]:
    """``flagged``: (time, attempt number) of the alert matched per pair; ``stale``: flagged
    pairs whose alerts were all resolved before their stall began (flagged, not a hit)."""
    hits = [p for p in flagged if p in truth.stalls and p not in stale]
    delays_h = [(flagged[p][0] - truth.stalls[p]).total_seconds() / 3600 for p in hits]
    delays_n = hit_delays(flagged, truth, stale)
    return {
        "flagged": len(flagged),
        "precision": ratio(len(hits), len(flagged)),
        "recall": ratio(len(hits), len(truth.stalls)),
        "delay_h_median": median(delays_h) if delays_h else float("nan"),
        "delay_attempts_median": median(delays_n) if delays_n else float("nan"),
        "early_share": ratio(sum(d < 0 for d in delays_n), len(delays_n)),
    }


def ceiling_of(truth: Truth) -> Ceiling:
    """The Bayes ceiling's filter (``bench/stall_ceiling.py``) on every pair of the cohort."""
    attempts = {
        pair: [Attempt(at, ok, g) for (at, ok), g in zip(seq, truth.gamed[pair], strict=True)]
        for pair, seq in truth.attempts.items()
    }
    return ceiling(attempts, truth.params)


def ceiling_figures(truth: Truth) -> dict[str, Any]:
    """The Bayes ceiling (``bench/stall_ceiling.py``): it knows the hidden parameters and which
    attempts were gamed -- an upper bound for the detectors, not one of them."""
    found = ceiling_of(truth)
    return {
        "ceiling_hindsight": hindsight(found.final, set(truth.stalls)),
        "ceiling_online": {
            "early": ONLINE_EARLY,
            "late": ONLINE_LATE,
            **detection(found.online, truth),
        },
    }


def per_learner(flagged: set[str], positives: set[str]) -> dict[str, Any]:
    hits = flagged & positives
    return {
        "flagged": len(flagged),
        "precision": ratio(len(hits), len(flagged)),
        "recall": ratio(len(hits), len(positives)),
    }


def vs_dropouts(flagged: set[str], first: dict[str, datetime], truth: Truth) -> dict[str, Any]:
    """Per learner against the drop-outs, with the median of first alert - drop time (days)."""
    out = per_learner(flagged, set(truth.dropouts))
    lags = [
        (at - truth.dropouts[k]).total_seconds() / 86400
        for k, at in first.items()
        if k in truth.dropouts
    ]
    out["delay_days_median"] = median(lags) if lags else float("nan")
    return out
