"""Sinks: the HTTP sink against a small in-process xAPI endpoint, pacing, JSONL."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tools.simulator import Config, Event, simulate
from tools.simulator.emit import HttpTarget, Pace, SinkError, batches, send_http, send_jsonl


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return simulate(Config(seed=3, learners=8, days=6)).events


@dataclass
class Endpoint:
    url: str
    requests: list[tuple[str, str, str, list[dict[str, Any]]]] = field(default_factory=list)
    fail_first: list[int] = field(default_factory=list)  # statuses to answer before succeeding


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    state = Endpoint(url="")

    async def statements(request: web.Request) -> web.Response:
        if state.fail_first:
            return web.Response(status=state.fail_first.pop(0), text="not now")
        user = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        body = orjson.loads(await request.read())
        state.requests.append(
            (user, request.headers["X-Experience-API-Version"], request.content_type, body)
        )
        return web.json_response([s["id"] for s in body])

    app = web.Application()
    app.router.add_post("/xapi/statements", statements)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_http_sink_posts_batches_per_tenant_with_auth_and_version(
    endpoint: Endpoint, events: list[Event]
) -> None:
    target = HttpTarget(endpoint.url, password="pw", credentials={"globex": ("globex.lms", "s3")})
    stats = await send_http(events, target, batch_size=40)
    assert stats.statements == len(events)
    assert stats.batches == len(endpoint.requests)
    sent = [s for *_, body in endpoint.requests for s in body]
    assert sent == [e.statement for e in events]
    for user, version, content_type, body in endpoint.requests:
        assert version == "2.0.0"
        assert content_type == "application/json"
        assert 1 <= len(body) <= 40
        tenants = {s["actor"].get("account", {}).get("homePage", "mbox") for s in body}
        assert len(tenants) == 1
        expected = (
            "acme.simulator:pw" if tenants == {"https://lms.acme.example.com"} else "globex.lms:s3"
        )
        assert user == expected
    assert stats.per_tenant.keys() == {"acme", "globex"}


async def test_http_sink_retries_unavailable_and_refuses_bad_requests(
    endpoint: Endpoint, events: list[Event]
) -> None:
    endpoint.fail_first = [503, 429]
    stats = await send_http(events[:10], HttpTarget(endpoint.url + "/xapi/statements"))
    assert stats.retries == 2
    assert [s["id"] for *_, b in endpoint.requests for s in b] == [
        e.statement["id"] for e in events[:10]
    ]
    endpoint.fail_first = [400]
    with pytest.raises(SinkError, match="400"):
        await send_http(events[:10], HttpTarget(endpoint.url))


async def test_rate_paces_the_statements(events: list[Event]) -> None:
    """41 statements at 400/s: statement i is due i/400 s after the first; a clock that only
    moves when the generator sleeps shows every wait (no real time, so no load can break it)."""
    now = 0.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds

    got = [
        b async for b in batches(events[:41], Pace(rate=400), 100, clock=lambda: now, sleep=sleep)
    ]
    assert sum(len(b) for b in got) == 41
    assert [e.statement["id"] for b in got for e in b] == [e.statement["id"] for e in events[:41]]
    assert len(waits) == 40  # one wait before each statement after the first
    assert waits == pytest.approx([1 / 400] * 40)
    assert now == pytest.approx(40 / 400)
    assert len(got) == 41  # a statement not yet due ends the batch before it


def test_pace_maps_event_time_to_wall_time() -> None:
    assert Pace().due(5, 10_000, 0) is None
    assert Pace(rate=10).due(5, 10_000, 0) == 0.5
    assert Pace(speedup=3600).due(0, 7_200_000, 0) == 2.0
    with pytest.raises(ValueError, match="not both"):
        Pace(rate=1, speedup=2)


async def test_jsonl_sink_writes_one_statement_a_line(tmp_path: Path, events: list[Event]) -> None:
    path = tmp_path / "out.jsonl"
    stats = await send_jsonl(events, path, batch_size=7)
    lines = path.read_bytes().splitlines()
    assert stats.statements == len(lines) == len(events)
    assert orjson.loads(lines[-1]) == events[-1].statement
