"""aiohttp pieces every service's HTTP server shares: ops routes and a latency middleware."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.health import Health
from shared.metrics import CONTENT_TYPE_LATEST, BaseMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEALTH_KEY = web.AppKey("health", Health)
METRICS_KEY = web.AppKey("metrics", BaseMetrics)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    result = await request.app[HEALTH_KEY].readiness()
    request.app[METRICS_KEY].up.set(1 if result.ready else 0)
    body = {"ready": result.ready, "checks": dict(result.checks)}
    return web.json_response(body, status=200 if result.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def latency_middleware(metrics_: BaseMetrics) -> Middleware:
    """Observe every request's latency by route pattern (bounded), method and status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            metrics_.http_latency.labels(name, request.method, str(status)).observe(
                time.perf_counter() - started
            )

    return middleware


def ops_app(health: Health, metrics_: BaseMetrics) -> web.Application:
    """An application with ``/healthz``, ``/readyz`` and ``/metrics``; services add routes."""
    app = web.Application(middlewares=[latency_middleware(metrics_)])
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = metrics_
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
