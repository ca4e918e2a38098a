"""Prometheus rules (deploy/prometheus) and Grafana dashboards (deploy/grafana): structure, valid
PromQL, and every metric they use registered by a service (built on fresh registries here; the
integration test tests/integration/ops/test_metric_names.py also scrapes a running ingest)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.ops.metricnames import (
    SERVICES,
    all_series,
    dashboard_expressions,
    expression_problems,
    rule_expressions,
    substitute_grafana,
)

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
#: what the issue asks the rules to cover, as a word each alert name must contain for one rule
REQUIRED_ALERTS = ("ConsumerLag", "DeadLetter", "TenantSilent", "Webhook", "ReadinessFlapping")


def load_rules() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return doc


def load_dashboard(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def rule_structure_problems(doc: dict[str, Any]) -> list[str]:
    """The shape Prometheus (and promtool check rules) requires, plus our own conventions."""
    problems = []
    if set(doc) != {"groups"}:
        problems.append(f"top level keys {sorted(doc)}")
    names: set[str] = set()
    for group in doc.get("groups") or []:
        gname = group.get("name")
        if not gname or gname in names:
            problems.append(f"group name {gname!r} missing or repeated")
        names.add(gname)
        if set(group) - {"name", "interval", "rules", "limit"}:
            problems.append(f"{gname}: unknown group keys {sorted(set(group) - {'name', 'rules'})}")
        for rule in group.get("rules") or []:
            alert = rule.get("alert")
            where = f"{gname}/{alert}"
            if not alert or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alert):
                problems.append(f"{where}: not an alerting rule with a valid name")
            if set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}:
                problems.append(f"{where}: unknown keys {sorted(rule)}")
            if "for" in rule and not DURATION.match(str(rule["for"])):
                problems.append(f"{where}: for {rule['for']!r} is not a duration")
            if (rule.get("labels") or {}).get("severity") not in ("warning", "critical"):
                problems.append(f"{where}: severity must be warning or critical")
            if (rule.get("labels") or {}).get("service") not in SERVICES:
                problems.append(f"{where}: service label must name a service")
            annotations = rule.get("annotations") or {}
            problems.extend(
                f"{where}: annotation {key} missing or too short"
                for key in ("summary", "description", "action")
                if len(str(annotations.get(key, ""))) < 20
            )
            problems.extend(
                f"{where}: annotation uses $labels.{label}, not in expr"
                for text in annotations.values()
                for label in re.findall(r"\$labels\.([A-Za-z_]+)", str(text))
                if label not in str(rule.get("expr")) and label != "instance"
            )
    return problems


def dashboard_structure_problems(doc: dict[str, Any]) -> list[str]:
    title = doc.get("title", "?")
    keys = ("uid", "title", "panels", "schemaVersion", "templating")
    problems = [f"{title}: no {key}" for key in keys if key not in doc]
    variables = {v["name"] for v in (doc.get("templating") or {}).get("list") or []}
    if "datasource" not in variables:
        problems.append(f"{title}: no datasource variable")
    ids = [p.get("id") for p in doc.get("panels") or []]
    if len(ids) != len(set(ids)):
        problems.append(f"{title}: panel ids repeat")
    for panel in doc.get("panels") or []:
        if panel.get("type") == "row":
            continue
        ptitle = panel.get("title")
        grid = panel.get("gridPos") or {}
        if not (set(grid) >= {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24):
            problems.append(f"{title}/{ptitle}: bad gridPos {grid}")
        if not panel.get("targets"):
            problems.append(f"{title}/{ptitle}: no query")
        if not panel.get("description"):
            problems.append(f"{title}/{ptitle}: no description")
        problems.extend(
            f"{title}/{ptitle}: uses undefined variable ${var}"
            for target in panel.get("targets") or []
            for var in re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)", str(target.get("expr")))
            if var not in variables
        )
    return problems


# ---------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def series() -> dict[str, frozenset[str]]:
    return all_series()


def test_rules_are_well_formed() -> None:
    assert rule_structure_problems(load_rules()) == []


def test_rules_cover_what_the_issue_asks() -> None:
    names = [r["alert"] for g in load_rules()["groups"] for r in g["rules"]]
    for word in REQUIRED_ALERTS:
        assert any(word in name for name in names), word
    assert len(names) == len(set(names))


def test_rules_use_only_registered_metrics(series: dict[str, frozenset[str]]) -> None:
    problems = [
        p
        for where, expr in rule_expressions(load_rules())
        for p in expression_problems(where, expr, series)
    ]
    assert problems == []


def test_every_service_has_a_dashboard_plus_an_overview() -> None:
    titles = {load_dashboard(p)["uid"] for p in DASHBOARDS}
    assert titles == {f"skillstream-{s}" for s in (*SERVICES, "overview")}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_well_formed_and_uses_registered_metrics(
    path: Path, series: dict[str, frozenset[str]]
) -> None:
    doc = load_dashboard(path)
    assert dashboard_structure_problems(doc) == []
    problems = [
        p
        for where, expr in dashboard_expressions(doc)
        for p in expression_problems(where, substitute_grafana(expr), series)
    ]
    assert problems == []


def test_every_service_metric_appears_on_a_dashboard(series: dict[str, frozenset[str]]) -> None:
    """A metric nobody charts is a metric nobody watches."""
    used = set()
    for path in DASHBOARDS:
        for _, expr in dashboard_expressions(load_dashboard(path)):
            used |= set(re.findall(r"skillstream_[a-z_]+", expr))
    families = {re.sub(r"_(total|created|bucket|sum|count)$", "", s) for s in series}
    charted = {re.sub(r"_(total|created|bucket|sum|count)$", "", s) for s in used}
    assert families - charted == set()


# ---------------------------------------------------------------- the checks themselves


def test_expression_check_reports_unknown_names_labels_and_syntax(
    series: dict[str, frozenset[str]],
) -> None:
    assert expression_problems("w", "rate(skillstream_ingest_statements_accepted[5m])", series) == [
        "w: metric skillstream_ingest_statements_accepted is not registered by any service"
    ]
    assert expression_problems("w", 'skillstream_ingest_outbox_backlog{tenant="a"}', series) == [
        "w: skillstream_ingest_outbox_backlog has no label(s) ['tenant']"
    ]
    assert expression_problems("w", "sum(rate(x[5m]", series)[0].startswith("w: not valid PromQL")
    assert expression_problems("w", '{__name__=~"skillstream_.+"}', series) == [
        'w: a selector without a plain metric name: {__name__=~"skillstream_.+"}'
    ]
    ok = (
        "histogram_quantile(0.9, sum by (le) (rate("
        'skillstream_ingest_publish_latency_seconds_bucket{le="1.0", pod="p"}[$__rate_interval])))'
    )
    assert expression_problems("w", substitute_grafana(ok), series) == []


def test_structure_checks_report_broken_rules_and_dashboards() -> None:
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [{"alert": "A b", "expr": "x", "for": "5 minutes", "labels": {}}],
            },
            {"name": "g", "rules": []},
        ]
    }
    problems = rule_structure_problems(rules)
    for expected in (
        "not an alerting rule",
        "is not a duration",
        "severity",
        "annotation summary",
        "repeated",
    ):
        assert any(expected in p for p in problems), expected
    board = {
        "title": "t",
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "title": "p",
                "gridPos": {"h": 1, "w": 20, "x": 10, "y": 0},
                "targets": [{"expr": 'x{a="$nope"}'}],
            }
        ],
    }
    problems = dashboard_structure_problems(board)
    for expected in ("no uid", "no datasource variable", "bad gridPos", "no description", "$nope"):
        assert any(expected in p for p in problems), expected
