"""The support-staff inbox: one static page (``GET /inbox``) with its script and style sheet.

The page itself needs no authentication: it holds no data. It asks for a staff token, keeps it in
the tab's ``sessionStorage`` and calls the JSON API (``/api/...``, see :mod:`services.alerts.web`)
with ``Authorization: Bearer``. Every response of the page carries a strict Content Security
Policy (scripts, styles and connections from this origin only, no inline code, no framing), so
even a learner-supplied string that slipped past the page's escaping could not run.

The files live in ``services/alerts/static`` (package data) and are read once, when the routes
are added; nothing is served from the file system per request and no other name is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Final

from aiohttp import web

from shared.http import Handler

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
#: name in ``static/`` -> content type; nothing else is served
ASSETS: Final = {
    "inbox.html": "text/html",
    "inbox.js": "text/javascript",
    "inbox.css": "text/css",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def load_assets() -> dict[str, Asset]:
    static = files("services.alerts") / "static"
    return {name: Asset(static.joinpath(name).read_bytes(), ct) for name, ct in ASSETS.items()}


def _handler(asset: Asset) -> Handler:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(
            body=asset.body, content_type=asset.content_type, charset="utf-8", headers=HEADERS
        )

    return serve


async def _to_inbox(_: web.Request) -> web.Response:
    raise web.HTTPFound("../inbox")  # relative: works behind a path prefix


def add_routes(app: web.Application) -> None:
    """``GET /inbox`` (the page), ``/inbox/inbox.js``, ``/inbox/inbox.css``; ``/inbox/``
    redirects to ``/inbox`` (the page's links are relative to it)."""
    assets = load_assets()
    app.router.add_get("/inbox", _handler(assets["inbox.html"]))
    app.router.add_get("/inbox/", _to_inbox)
    for name in ("inbox.js", "inbox.css"):
        app.router.add_get(f"/inbox/{name}", _handler(assets[name]))
