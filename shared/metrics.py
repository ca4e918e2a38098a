"""Prometheus metrics: each service builds one metrics object on an injected registry.

Names are prefixed ``skillstream_<service>_``; labels stay bounded (tenant, channel, kind, rule
and the like, never a learner, statement or alert id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "BaseMetrics", "render"]

# latency buckets from 1 ms to 10 s, fit for per-message and per-request work
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BaseMetrics:
    """What every service exposes; subclasses add their own series in ``__init__``."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.prefix = f"skillstream_{service}_"
        self.up = Gauge(
            self.name("ready"),
            "1 when the service's readiness checks pass, else 0",
            registry=registry,
        )
        self.db_pool_size = Gauge(
            self.name("db_pool_connections"),
            "PostgreSQL pool connections by state",
            ["state"],
            registry=registry,
        )
        self.http_latency = Histogram(
            self.name("http_request_duration_seconds"),
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        #: called before every scrape, to refresh gauges read from live objects (pools...)
        self.before_scrape: list[Callable[[], None]] = []

    def name(self, suffix: str) -> str:
        return self.prefix + suffix

    def watch_pool(self, pool: PoolLike) -> None:
        """Report ``pool``'s size, idle and maximum connections at every scrape."""

        def refresh() -> None:
            self.db_pool_size.labels("open").set(pool.get_size())
            self.db_pool_size.labels("idle").set(pool.get_idle_size())
            self.db_pool_size.labels("max").set(pool.get_max_size())

        self.before_scrape.append(refresh)

    def render(self) -> bytes:
        for refresh in self.before_scrape:
            refresh()
        return render(self.registry)


class PoolLike(Protocol):
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(registry)
