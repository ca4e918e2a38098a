"""Statements are valid xAPI 2.0, ordered in event time, and every one maps to a competency."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from shared.framework import Framework
from shared.xapi import XapiVersion, parse_statement, parse_statements
from tools.simulator import Simulation
from tools.simulator.academy import framework_of
from tools.simulator.output import write_files
from tools.simulator.statements import VERBS, iso_duration


def test_a_few_hundred_statements_of_every_verb_validate_as_xapi_2(sim: Simulation) -> None:
    per_verb: Counter[str] = Counter()
    checked = 0
    for event in sim.events:
        verb = event.statement["verb"]["id"]
        if per_verb[verb] >= 80:
            continue
        per_verb[verb] += 1
        parse_statement(orjson.dumps(event.statement), version=XapiVersion.V2_0)
        checked += 1
    assert set(per_verb) == {v["id"] for v in VERBS.values()}
    assert checked >= 400


def test_a_batch_validates_as_an_array_and_ids_are_unique(sim: Simulation) -> None:
    batch = [e.statement for e in sim.events[1000:1300]]
    assert len(parse_statements(orjson.dumps(batch), version=XapiVersion.V2_0)) == 300
    ids = [e.statement["id"] for e in sim.events]
    assert len(ids) == len(set(ids))


def test_statements_are_in_event_time_order_across_learners(sim: Simulation) -> None:
    stamps = [e.statement["timestamp"] for e in sim.events]
    assert stamps == sorted(stamps)
    assert [e.ms for e in sim.events] == sorted(e.ms for e in sim.events)
    per_learner: dict[tuple[str, str], list[str]] = {}
    for e in sim.events:
        per_learner.setdefault((e.tenant, e.learner_ref), []).append(e.statement["timestamp"])
    assert all(len(set(v)) == len(v) for v in per_learner.values())
    interleaved = sum(
        1 for a, b in zip(sim.events, sim.events[1:], strict=False) if a.learner != b.learner
    )
    assert interleaved > len(sim.events) / 10


def _matches(match: dict[str, Any], st: dict[str, Any]) -> bool:
    obj = st["object"]
    parents = [
        p["id"] for p in st.get("context", {}).get("contextActivities", {}).get("parent", [])
    ]
    if "activity_id" in match:
        return bool(obj["id"] == match["activity_id"])
    if "activity_type" in match:
        return bool(obj.get("definition", {}).get("type") == match["activity_type"])
    if "context_parent" in match:
        return match["context_parent"] in parents
    return False


def test_framework_files_validate_and_every_statement_maps_to_a_competency(
    sim: Simulation, tmp_path: Path
) -> None:
    write_files(sim, tmp_path)
    docs = list(yaml.safe_load_all((tmp_path / "framework.yaml").read_text(encoding="utf-8")))
    frameworks = {f.tenant: f for f in (Framework.model_validate(d) for d in docs)}
    assert set(frameworks) == {t.id for t in sim.academy.tenants}
    for tenant in sim.academy.tenants:
        single = yaml.safe_load((tmp_path / "frameworks" / f"{tenant.id}.yaml").read_text("utf-8"))
        assert (
            Framework.model_validate(single)
            == frameworks[tenant.id]
            == framework_of(sim.academy, tenant)
        )
    cohort_of: dict[tuple[str, str], set[str]] = {}
    for f in frameworks.values():
        for p in f.programmes:
            learners = {ref for c in p.cohorts for ref in c.learners}
            for ref in learners:
                cohort_of[f.tenant, ref] = set(p.competencies)
            assert p.sessions
    assert len(cohort_of) == len(sim.learners)
    mappings = {
        t: [(m.match.model_dump(exclude_none=True), m.competency) for m in f.mappings]
        for t, f in frameworks.items()
    }
    by_activity = {
        t: {m["activity_id"]: c for m, c in ms if "activity_id" in m} for t, ms in mappings.items()
    }
    for event in sim.events:
        st = event.statement
        competency = by_activity[event.tenant].get(st["object"]["id"])
        if competency is None:  # the broader rules
            competency = next((c for m, c in mappings[event.tenant] if _matches(m, st)), None)
        assert competency is not None, st
        assert competency in cohort_of[event.tenant, event.learner_ref]


def test_actor_kinds_differ_by_tenant(sim: Simulation) -> None:
    kinds = {(e.tenant, "account" in e.statement["actor"]) for e in sim.events}
    assert kinds == {("acme", True), ("globex", False)}
    for e in sim.events[:200]:
        actor = e.statement["actor"]
        ref = (
            f"account:{actor['account']['homePage']}|{actor['account']['name']}"
            if "account" in actor
            else f"mbox:{actor['mbox']}"
        )
        assert ref == e.learner_ref


def test_every_answer_has_the_hidden_state_before_it(sim: Simulation) -> None:
    answered = [e for e in sim.events if e.statement["verb"]["id"].endswith("/answered")]
    assert all(len(e.truth) == 1 for e in answered)
    assert all(
        not e.truth for e in sim.events if not e.statement["verb"]["id"].endswith("/answered")
    )
    for e in answered[:500]:
        record = e.truth[0]
        assert record["statement_id"] == e.statement["id"]
        assert record["timestamp"] == e.statement["timestamp"]
        assert record["competency"] in record["known"]
        assert set(record["known"]) == set(record["p_known"])
        assert all(0.0 <= p <= 1.0 for p in record["p_known"].values())


def test_truth_file_lists_learners_first_then_records_in_time_order(
    sim: Simulation, tmp_path: Path
) -> None:
    write_files(sim, tmp_path)
    records = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds[: len(sim.learners)] == ["learner"] * len(sim.learners)
    rest = records[len(sim.learners) :]
    assert {r["kind"] for r in rest} == {"state", "stall", "dropout"}
    stamps = [r["timestamp"] for r in rest]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "PT0S"), (42.5, "PT42.5S"), (63, "PT1M3S"), (3600, "PT1H"), (3723.456, "PT1H2M3.46S")],
)
def test_durations_are_iso_8601(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text
