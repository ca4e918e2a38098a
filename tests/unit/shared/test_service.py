from __future__ import annotations

import gc

import aiohttp
from aiohttp import web

from shared.service import GC_THRESHOLD, serve_http, tune_gc


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
