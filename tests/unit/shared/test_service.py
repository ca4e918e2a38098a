from __future__ import annotations

import asyncio
import gc
import os
import signal

import aiohttp
import pytest
from aiohttp import web

from shared.service import GC_THRESHOLD, run_until_stopped, serve_http, tune_gc
from shared.settings import EventLoop, ServiceSettings


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hi")


async def test_serve_http_binds_a_free_port_and_stops() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    async with serve_http(app, "127.0.0.1", 0) as port:
        assert port > 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as r,
        ):
            assert await r.text() == "hi"
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"http://127.0.0.1:{port}/")
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("the server still answers after the block")


def test_tune_gc_freezes_start_up_objects_and_raises_the_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize(("kind", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_run_until_stopped_runs_on_the_loop_asked_for_and_stops_on_sigterm(
    kind: EventLoop, module: str
) -> None:
    seen: list[str] = []

    async def main(stop: asyncio.Event) -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)
        # a real SIGTERM, as Kubernetes sends it: the handler sets ``stop``
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
        seen.append("stopped")

    run_until_stopped(main, event_loop=kind)
    assert seen[0].split(".")[0] == module
    assert seen[1:] == ["stopped"]


def test_services_run_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKILLSTREAM_EVENT_LOOP", raising=False)
    assert ServiceSettings().event_loop == "uvloop"
    monkeypatch.setenv("SKILLSTREAM_EVENT_LOOP", "asyncio")
    assert ServiceSettings().event_loop == "asyncio"
