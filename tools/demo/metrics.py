"""The services' ``/metrics`` pages, read: Prometheus text parsed (:func:`parse_metrics`), the
figures the demo and the benchmarks use (:class:`Metrics`, :func:`read_metrics`) and how the
demo prints counts (:func:`format_count`, :func:`describe`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> sample name -> [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


@dataclass
class Metrics:
    """The figures the demo and the benchmarks read, from the three ``/metrics`` pages."""

    accepted: float = 0.0
    rejected: float = 0.0
    published: float = 0.0
    processed: float = 0.0
    updates: float = 0.0
    alerts_applied: float = 0.0
    raised: dict[str, float] = field(default_factory=dict)

    @property
    def raised_total(self) -> float:
        return sum(self.raised.values())


def sample_total(samples: Mapping[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


def read_metrics(pages: Mapping[str, str]) -> Metrics:
    ingest = parse_metrics(pages.get("ingest", ""))
    progress = parse_metrics(pages.get("progress", ""))
    alerts = parse_metrics(pages.get("alerts", ""))
    raised: dict[str, float] = {}
    for labels, value in alerts.get("skillstream_alerts_alerts_raised_total", []):
        raised[labels.get("kind", "?")] = raised.get(labels.get("kind", "?"), 0.0) + value
    applied = sum(
        value
        for labels, value in alerts.get("skillstream_alerts_progress_updates_total", [])
        if labels.get("outcome") == "applied"
    )
    return Metrics(
        accepted=sample_total(ingest, "skillstream_ingest_statements_accepted_total"),
        rejected=sample_total(ingest, "skillstream_ingest_statements_rejected_total"),
        published=sample_total(ingest, "skillstream_ingest_events_published_total"),
        processed=sample_total(progress, "skillstream_progress_events_processed_total"),
        updates=sample_total(progress, "skillstream_progress_updates_published_total"),
        alerts_applied=applied,
        raised=raised,
    )


def format_count(value: float) -> str:
    return f"{round(value):,}"


def describe(seq: Sequence[tuple[str, float]]) -> str:
    return " · ".join(f"{k} {format_count(v)}" for k, v in seq) or "none yet"
