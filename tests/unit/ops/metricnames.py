"""Which metric names the services register, and which ones the dashboards and rules use.

The services build their metrics on an injected ``CollectorRegistry``; a registry (or a scrape of
``/metrics``) lists metric *families*, while PromQL selects *series*: a counter ``x`` is queried as
``x_total`` (and ``x_created``), a histogram ``h`` as ``h_bucket``, ``h_sum``, ``h_count`` (and
``h_created``). :func:`series_names` does that expansion, so a dashboard asking for
``skillstream_ingest_statements_accepted`` (without ``_total``) is caught.

PromQL is parsed with ``promql-parser`` (the Rust parser of GreptimeDB, with Python bindings), so
names are taken from real selectors, not guessed with regular expressions; Grafana's variables are
substituted first (``$__rate_interval`` -> ``5m``, ``$tenant`` -> ``.*``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import promql_parser
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import BaseMetrics

SERVICES = ("ingest", "progress", "alerts")

#: labels Prometheus adds from the scrape target (kubernetes_sd + the usual relabelling)
TARGET_LABELS = frozenset(
    {"instance", "job", "namespace", "pod", "container", "service", "endpoint", "node"}
)

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
_EXTRA_LABELS = {"histogram": ("le",), "gaugehistogram": ("le",), "summary": ("quantile",)}


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    labels: frozenset[str]


def series_names(families: Mapping[str, Family]) -> dict[str, frozenset[str]]:
    """Every series name PromQL can select, with the label names it carries."""
    series: dict[str, frozenset[str]] = {}
    for fam in families.values():
        suffixes = _SUFFIXES.get(fam.type, ("",))
        for suffix in suffixes:
            extra = _EXTRA_LABELS.get(fam.type, ()) if suffix in ("_bucket", "") else ()
            series[fam.name + suffix] = fam.labels | frozenset(extra)
    return series


def _family_name(metric: Metric) -> str:
    # prometheus_client strips "_total" from counter family names; keep the base name
    return metric.name


def families_of_registry(registry: CollectorRegistry) -> dict[str, Family]:
    """The families a registry exposes, with label names even for series never observed."""
    found: dict[str, Family] = {}
    names_to_collectors: dict[str, Any] = registry._names_to_collectors
    collectors = {id(c): c for c in names_to_collectors.values()}
    for collector in collectors.values():
        labelnames = frozenset(getattr(collector, "_labelnames", ()))
        for metric in collector.collect():
            found[_family_name(metric)] = Family(metric.name, metric.type, labelnames)
    return found


def families_of_exposition(text: str) -> dict[str, Family]:
    """The families in a ``/metrics`` answer (labels only of series that have samples)."""
    found: dict[str, Family] = {}
    for metric in text_string_to_metric_families(text):
        labels = frozenset(k for s in metric.samples for k in s.labels) - {"le", "quantile"}
        found[metric.name] = Family(metric.name, metric.type, labels)
    # the text format 0.0.4 writes a counter's or histogram's "_created" as a gauge of its own
    return {
        name: fam
        for name, fam in found.items()
        if not (name.endswith("_created") and name.removesuffix("_created") in found)
    }


def metrics_class(service: str) -> type[BaseMetrics]:
    """The service's metrics class: the BaseMetrics subclass in ``services.<service>.metrics``,
    or BaseMetrics itself for a service that has none yet."""
    try:
        module = importlib.import_module(f"services.{service}.metrics")
    except ModuleNotFoundError:
        return BaseMetrics
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseMetrics)
        and obj is not BaseMetrics
        and obj.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"services.{service}.metrics defines {classes}"
    return classes[0]


def service_families(service: str) -> dict[str, Family]:
    """What ``service`` registers, built on a fresh registry like the service does."""
    registry = CollectorRegistry()
    cls = metrics_class(service)
    if cls is BaseMetrics:
        BaseMetrics(service, registry)
    else:
        cls(registry)  # type: ignore[call-arg, arg-type]
    return families_of_registry(registry)


def all_series() -> dict[str, frozenset[str]]:
    series: dict[str, frozenset[str]] = {}
    for service in SERVICES:
        series.update(series_names(service_families(service)))
    return series


# ---------------------------------------------------------------- PromQL


@dataclass(frozen=True)
class Selector:
    name: str | None
    labels: frozenset[str]


GRAFANA_INTERVALS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?")


def substitute_grafana(expr: str) -> str:
    """Grafana's variables replaced so the expression parses as PromQL."""
    expr = GRAFANA_INTERVALS.sub("5m", expr)
    return GRAFANA_VARIABLE.sub(".*", expr)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector in ``expr`` (raises ValueError when it is not valid PromQL)."""
    tree = promql_parser.parse(expr)
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = frozenset(m.name for m in node.matchers.matchers)
            name = node.name
            if not name:
                equal = [
                    m.value
                    for m in node.matchers.matchers
                    if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
                ]
                name = equal[0] if equal else None
            found.append(Selector(name, labels - {"__name__"}))
        return True

    promql_parser.walk(tree, visit)
    return found


def expression_problems(
    where: str,
    expr: str,
    series: Mapping[str, frozenset[str]],
    *,
    allowed: frozenset[str] = frozenset(),
) -> list[str]:
    """What is wrong with ``expr``: does not parse, selects no name, or names an unknown metric
    or a label the metric does not have."""
    try:
        found = selectors(expr)
    except (ValueError, TypeError) as exc:
        return [f"{where}: not valid PromQL ({exc}): {expr}"]
    if not found:
        return [f"{where}: selects no metric: {expr}"]
    problems = []
    for sel in found:
        if sel.name is None:
            problems.append(f"{where}: a selector without a plain metric name: {expr}")
        elif sel.name in allowed:
            continue
        elif sel.name not in series:
            problems.append(f"{where}: metric {sel.name} is not registered by any service")
        else:
            unknown = sel.labels - series[sel.name] - TARGET_LABELS
            if unknown:
                problems.append(f"{where}: {sel.name} has no label(s) {sorted(unknown)}")
    return problems


# ---------------------------------------------------------------- dashboards and rules


def dashboard_expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target (rows' nested panels too) and query variable."""
    title = dashboard.get("title", "?")

    def panels(items: list[Any]) -> Iterator[Mapping[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])

    for panel in panels(dashboard.get("panels") or []):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if expr:
                yield f"{title} / {panel.get('title')} / {target.get('refId')}", str(expr)
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        match = re.fullmatch(r"\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)\s*", str(text))
        if match:
            yield f"{title} / variable {var.get('name')}", match.group(1)
        else:
            yield f"{title} / variable {var.get('name')}", str(text)


def rule_expressions(rules: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            yield f"{group.get('name')} / {name}", str(rule.get("expr"))
