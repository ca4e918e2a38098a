"""Each archetype's behaviour shows in the statements and in the ground truth."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from tools.simulator import Simulation
from tools.simulator.statements import EXT_HINTS_USED

Key = tuple[str, str]
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
ATTENDED = "http://adlnet.gov/expapi/verbs/attended"
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$")


def seconds(duration: str) -> float:
    match = _DURATION.match(duration)
    assert match, duration
    h, m, s = match.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def archetypes(sim: Simulation) -> dict[Key, str]:
    return {(r["tenant"], r["learner"]): r["archetype"] for r in sim.learners}


def by_learner(sim: Simulation, verb: str) -> dict[Key, list[dict[str, Any]]]:
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for e in sim.events:
        if e.statement["verb"]["id"] == verb:
            out[e.tenant, e.learner_ref].append(e.statement)
    return out


def group(sim: Simulation, values: dict[Key, float]) -> dict[str, list[float]]:
    kinds = archetypes(sim)
    out: dict[str, list[float]] = defaultdict(list)
    for key, value in values.items():
        out[kinds[key]].append(value)
    return out


def longest_failure_run(answers: list[dict[str, Any]]) -> int:
    runs: dict[str, int] = defaultdict(int)
    best = 0
    for st in answers:
        module = st["object"]["id"].rsplit("/", 2)[0]
        runs[module] = 0 if st["result"]["success"] else runs[module] + 1
        best = max(best, runs[module])
    return best


def test_every_archetype_is_present(sim: Simulation) -> None:
    counts: dict[str, int] = defaultdict(int)
    for kind in archetypes(sim).values():
        counts[kind] += 1
    assert counts == {"typical": 60, "fast": 18, "wheel-spinner": 18, "drop-out": 12, "gamer": 12}


def test_wheel_spinners_fail_long_and_barely_learn(sim: Simulation) -> None:
    answers = by_learner(sim, ANSWERED)
    runs = group(sim, {k: longest_failure_run(v) for k, v in answers.items()})
    assert statistics.median(runs["wheel-spinner"]) >= 2 * statistics.median(runs["typical"])
    assert statistics.median(runs["wheel-spinner"]) >= 10
    stuck_known = [
        r["final_known"][c]
        for r in sim.learners
        if r["archetype"] == "wheel-spinner"
        for c in r["stuck"]
    ]
    assert stuck_known
    assert sum(stuck_known) / len(stuck_known) < 0.35
    final = group(
        sim,
        {
            (r["tenant"], r["learner"]): sum(r["final_known"].values()) / len(r["final_known"])
            for r in sim.learners
        },
    )
    assert statistics.mean(final["wheel-spinner"]) < statistics.mean(final["typical"]) - 0.1


def test_fast_learners_know_more_of_what_they_practise(sim: Simulation) -> None:
    known: dict[Key, list[bool]] = defaultdict(list)
    for e in sim.events:
        for record in e.truth:
            known[e.tenant, e.learner_ref].append(record["known"][record["competency"]])
    share = group(sim, {k: sum(v) / len(v) for k, v in known.items()})
    assert statistics.mean(share["fast"]) > statistics.mean(share["typical"]) + 0.05
    assert statistics.mean(share["typical"]) > statistics.mean(share["wheel-spinner"])


def test_wheel_spinners_truly_stall_on_their_stuck_competencies(sim: Simulation) -> None:
    stalls = [r for _, r in sim.extra_truth if r["kind"] == "stall"]
    stuck = {(r["tenant"], r["learner"]): set(r["stuck"]) for r in sim.learners}
    kinds = archetypes(sim)
    spinners = [k for k, a in kinds.items() if a == "wheel-spinner"]
    stalled = {
        (r["tenant"], r["learner"])
        for r in stalls
        if r["competency"] in stuck[r["tenant"], r["learner"]]
    }
    assert len(stalled) >= 0.8 * len(spinners)
    typical = [k for k, a in kinds.items() if a == "typical"]
    per_typical = sum(1 for r in stalls if kinds[r["tenant"], r["learner"]] == "typical") / len(
        typical
    )
    per_spinner = sum(
        1 for r in stalls if kinds[r["tenant"], r["learner"]] == "wheel-spinner"
    ) / len(spinners)
    assert per_spinner > 2 * per_typical
    for record in stalls:
        assert record["attempts"] == 10
        if record["resolved_at"] is not None:
            assert record["resolved_at"] >= record["timestamp"]


def test_gamers_answer_fast_and_abuse_hints(sim: Simulation) -> None:
    answers = by_learner(sim, ANSWERED)
    durations = group(
        sim,
        {
            k: statistics.median(seconds(s["result"]["duration"]) for s in v)
            for k, v in answers.items()
        },
    )
    hints = group(
        sim,
        {
            k: sum(s["result"]["extensions"][EXT_HINTS_USED] for s in v) / len(v)
            for k, v in answers.items()
        },
    )
    assert statistics.median(durations["gamer"]) < 12
    assert statistics.median(durations["typical"]) > 25
    assert sum(d < 15 for d in durations["gamer"]) >= 0.8 * len(durations["gamer"])
    assert sum(d > 20 for d in durations["typical"]) >= 0.9 * len(durations["typical"])
    assert statistics.median(hints["gamer"]) > 0.8
    assert statistics.median(hints["typical"]) < 0.3
    assert statistics.median(durations["fast"]) < statistics.median(durations["typical"])


def _sessions(sim: Simulation) -> dict[str, list[tuple[datetime, str]]]:
    return {
        c.id: [(s.end, s.activity_id) for s in c.sessions]
        for t in sim.academy.tenants
        for p in t.programmes
        for c in p.cohorts
    }


def test_drop_outs_stop_and_their_attendance_fades_first(sim: Simulation) -> None:
    dropouts = {
        (r["tenant"], r["learner"]): r for _, r in sim.extra_truth if r["kind"] == "dropout"
    }
    learners = {(r["tenant"], r["learner"]): r for r in sim.learners}
    assert {k for k, r in learners.items() if r["archetype"] == "drop-out"} == set(dropouts)
    last: dict[Key, str] = {}
    for e in sim.events:
        last[e.tenant, e.learner_ref] = e.statement["timestamp"]
    attended = by_learner(sim, ATTENDED)
    sessions = _sessions(sim)
    before = [0, 0]  # attended, scheduled: earlier than the fade
    fading = [0, 0]
    for key, record in dropouts.items():
        assert last[key] <= record["timestamp"]
        assert record["last_statement_at"] == last[key]
        drop = datetime.fromisoformat(record["timestamp"])
        fade = datetime.fromisoformat(record["attendance_fade_from"])
        assert drop - fade == timedelta(days=10) or fade == sim.academy.start
        went = {s["object"]["id"] for s in attended.get(key, [])}
        for end, activity in sessions[learners[key]["cohort"]]:
            bucket = before if end < fade else fading if end < drop else None
            if bucket is not None:
                bucket[0] += activity in went
                bucket[1] += 1
    assert before[1]
    assert fading[1]
    assert fading[0] / fading[1] < 0.8 * before[0] / before[1]


def test_learners_who_stay_are_active_to_the_end(sim: Simulation) -> None:
    last: dict[Key, str] = {}
    for e in sim.events:
        last[e.tenant, e.learner_ref] = e.statement["timestamp"]
    kinds = archetypes(sim)
    end = sim.events[-1].statement["timestamp"][:10]
    typical_last = sorted(v[:10] for k, v in last.items() if kinds[k] == "typical")
    assert statistics.median_low(typical_last) >= str(
        datetime.fromisoformat(end).date() - timedelta(days=4)
    )
