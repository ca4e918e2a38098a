"""Every metric name the dashboards and alert rules use is one the services really expose.

ingest runs in-process against the real Kafka and PostgreSQL and is scraped over HTTP at
/metrics; its exposition must list the same families its metrics class registers (so the
registry-based check used for progress and alerts, whose metrics classes are built on fresh
registries, sees what a scrape sees). Then every selector of deploy/grafana/*.json and
deploy/prometheus/alerts.yaml is checked against the union.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from services.ingest.app import open_ingest
from services.ingest.config import IngestSettings
from tests.unit.ops.metricnames import (
    SERVICES,
    dashboard_expressions,
    expression_problems,
    families_of_exposition,
    rule_expressions,
    series_names,
    service_families,
    substitute_grafana,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def ingest_metrics_text(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str, kafka_cleanup: None
) -> AsyncIterator[str]:
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        partitions=2,
        http_port=0,
        consumer_group=f"{topic_prefix}ingest",
        intake_enabled=False,
        relay_poll_seconds=0.2,
        learner_key_salt=SecretStr("integration-salt"),
    )
    async with (
        open_ingest(settings) as ingest,
        TestServer(ingest.app, host="127.0.0.1") as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        base = f"http://127.0.0.1:{server.port}"
        async with http.get(f"{base}/readyz") as resp:  # sets skillstream_ingest_ready
            assert resp.status in (200, 503)
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            yield await resp.text()


async def test_dashboards_and_rules_use_only_metrics_the_services_expose(
    ingest_metrics_text: str,
) -> None:
    scraped = families_of_exposition(ingest_metrics_text)
    registered = service_families("ingest")
    assert {(f.name, f.type) for f in scraped.values()} == {
        (f.name, f.type) for f in registered.values()
    }, "the /metrics scrape and the metrics class disagree"
    assert "skillstream_ingest_ready" in scraped
    assert "skillstream_ingest_db_pool_connections" in scraped

    series = series_names(registered)  # labels of never-observed series come from the class
    for service in SERVICES:
        if service != "ingest":
            series.update(series_names(service_families(service)))
    # what the scrape shows as sample names must be among the series we derive
    sample_names = {
        line.split("{")[0].split(" ")[0]
        for line in ingest_metrics_text.splitlines()
        if line and not line.startswith("#")
    }
    assert sample_names <= set(series), sample_names - set(series)

    used: list[tuple[str, str]] = []
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        used += [(w, substitute_grafana(e)) for w, e in dashboard_expressions(doc)]
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text("utf-8"))
    used += list(rule_expressions(rules))
    assert len(used) > 50
    problems = [p for where, expr in used for p in expression_problems(where, expr, series)]
    assert problems == []
    for service in SERVICES:
        assert any(f"skillstream_{service}_" in expr for _, expr in used), service
