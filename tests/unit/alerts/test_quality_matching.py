"""The alert-quality benchmark's matching of wheel-spinning alerts to the simulator's true stalls
(``bench/alert_truth.py``, used by ``bench/bench_alert_quality.py`` and
``bench/alert_replay.py``): a stall is detected by the alert open when it began."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tools.simulator.learners import Params

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
PAIR = ("0123456789abcdef0123456789abcdef", "ds.statistics")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "bench" / "alert_truth.py"
    spec = importlib.util.spec_from_file_location("alert_truth", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # its sibling ``stall_ceiling``
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _truth(bench: ModuleType, first_unknown: int) -> object:
    """20 attempts an hour apart on PAIR; a true stall from attempt ``first_unknown`` (1-based):
    its 10th unknown attempt is ``first_unknown + 9``."""
    truth = bench.Truth({}, {}, {}, {}, defaultdict(list), {})
    truth.attempts[PAIR] = [(T0 + timedelta(hours=i), False) for i in range(20)]
    tenth = first_unknown + 9
    truth.stalls[PAIR] = truth.attempts[PAIR][tenth - 1][0]
    truth.stall_index[PAIR] = tenth
    truth.stall_start[PAIR] = truth.attempts[PAIR][first_unknown - 1][0]
    return truth


def _match(
    bench: ModuleType, truth: object, alerts: list[tuple[int, int | None]]
) -> dict[str, float]:
    """Alerts as (opened at attempt n, resolved at attempt n or None), in opening order."""
    wheel: dict[tuple[str, str], tuple[datetime, int]] = {}
    stale: set[tuple[str, str]] = set()
    for opened, resolved in alerts:
        at = T0 + timedelta(hours=opened - 1)
        end = None if resolved is None else T0 + timedelta(hours=resolved - 1)
        bench.match_wheel(wheel, stale, PAIR, at, end, truth)
    result: dict[str, float] = bench.detection(wheel, truth, frozenset(stale))
    return result


def test_an_alert_resolved_before_the_stall_began_does_not_detect_it(bench: ModuleType) -> None:
    truth = _truth(bench, first_unknown=8)  # stall: attempts 8..17
    found = _match(bench, truth, [(3, 5)])
    assert (found["flagged"], found["recall"], found["precision"]) == (1, 0.0, 0.0)


def test_the_alert_open_when_the_stall_began_gives_the_delay(bench: ModuleType) -> None:
    truth = _truth(bench, first_unknown=8)
    found = _match(bench, truth, [(3, 5), (16, None)])  # a false alarm, then the stall
    assert (found["recall"], found["precision"]) == (1.0, 1.0)
    assert found["delay_attempts_median"] == -1  # the second alert, one attempt early
    assert found["delay_h_median"] == -1.0


def test_an_alert_open_since_before_the_stall_detects_it(bench: ModuleType) -> None:
    truth = _truth(bench, first_unknown=8)
    found = _match(bench, truth, [(6, None)])
    assert (found["recall"], found["precision"]) == (1.0, 1.0)
    assert found["delay_attempts_median"] == -11


def test_the_ceiling_flags_a_certain_stall_one_attempt_early(bench: ModuleType) -> None:
    """A pair that can never be known stalls at its 10th attempt: the online ceiling, sure of
    it after the 9th, flags it there; a learner who knows the competency for sure is not flagged.
    """
    truth: Any = _truth(bench, first_unknown=1)  # stall: attempts 1..10
    other = ("fedcba9876543210fedcba9876543210", "ds.statistics")
    truth.attempts[other] = [(T0 + timedelta(hours=i), True) for i in range(20)]
    for pair in (PAIR, other):
        truth.gamed[pair] = [None] * 20
    never = Params(prior=0.0, learn=0.0, forget=0.0, guess=0.2, slip=0.1)
    always = Params(prior=1.0, learn=0.0, forget=0.0, guess=0.2, slip=0.1)
    truth.params = {PAIR[0]: {PAIR[1]: never}, other[0]: {other[1]: always}}
    found = bench.ceiling_figures(truth)
    online = found["ceiling_online"]
    assert (online["flagged"], online["precision"], online["recall"]) == (1, 1.0, 1.0)
    assert online["delay_attempts_median"] == -1
    hindsight = found["ceiling_hindsight"]
    assert hindsight["expected_stalls"] == 1.0
    assert hindsight["best_precision_at_recall_95"]["threshold"] == 1.0
    assert hindsight["best_recall_at_precision_75"]["precision"] == 1.0
