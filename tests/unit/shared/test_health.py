from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from shared.health import Health
from shared.http import ops_app
from shared.metrics import BaseMetrics


async def ok() -> None:
    return None


async def broken() -> None:
    raise ConnectionRefusedError("db down")


async def slow() -> None:
    await asyncio.sleep(10)


async def test_ready_only_when_every_check_passes() -> None:
    result = await Health({"a": ok, "b": broken, "c": slow}, timeout=0.05).readiness()
    assert not result.ready
    assert result.checks["a"] == "ok"
    assert "db down" in result.checks["b"]
    assert "timed out" in result.checks["c"]
    assert (await Health({"a": ok}).readiness()).ready


async def test_ops_routes() -> None:
    registry = CollectorRegistry()
    metrics = BaseMetrics("demo", registry)
    health = Health({"database": broken})
    async with TestClient(TestServer(ops_app(health, metrics))) as client:
        alive = await client.get("/healthz")
        assert alive.status == 200
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"].startswith("ConnectionRefusedError")
        health.add("database", ok)
        assert (await client.get("/readyz")).status == 200
        text = await (await client.get("/metrics")).text()
    assert "skillstream_demo_ready 1.0" in text
    latency = "skillstream_demo_http_request_duration_seconds_count"
    assert f'{latency}{{method="GET",route="/readyz",status="503"}} 1.0' in text
