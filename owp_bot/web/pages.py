"""The dashboard's pages: the built single-page app (web/ -> owp_bot/web/static) and what it asks first.

`/` and `/dashboard/...` answer the app's index.html (never cached, so a deploy shows at once);
`/assets/...` are content-hashed build outputs, cached for a year. The shell holds no data: every number
on it comes from the API, which answers only the admin when OWP_PUBLIC_DASHBOARD=false.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel

from owp_bot import __version__
from owp_bot.errors import Problem
from owp_bot.keys import SETTINGS
from owp_bot.protocol.models import Answer
from owp_bot.protocol.routes import Api, Call
from owp_bot.web.stream import STREAMS, close_streams

STATIC_DIR = Path(__file__).parent / "static"
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
SHELL_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}

dashboard_api = Api("dashboard")


class DashboardInfo(Answer):
    public_dashboard: bool
    demo_mode: bool
    version: str


@dashboard_api.route("GET", "/v1/dashboard", auth="none",
                     summary="What the dashboard needs to know before it asks for data",
                     responses={200: DashboardInfo})
async def dashboard_info(call: Call) -> BaseModel:
    """Whether the pool is readable without the admin token (OWP_PUBLIC_DASHBOARD), and demo mode."""
    settings = call.request.app[SETTINGS]
    return DashboardInfo(public_dashboard=settings.public_dashboard, demo_mode=settings.demo_mode,
                         version=__version__)


async def shell(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise Problem(503, "the dashboard is not built; run scripts/build-frontends.sh "
                           "(npm ci + npm run build in web/) and restart")
    return web.FileResponse(index, headers=SHELL_HEADERS)


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC_DIR / "assets" / name
    if not _ASSET_NAME.match(name) or not path.is_file():
        raise Problem(404, f"no dashboard asset {name!r}; reload the page to get the current build")
    return web.FileResponse(path, headers=ASSET_HEADERS)


def add_dashboard(app: web.Application) -> None:
    """Routes of the app shell and its assets, and closing of open event streams on shutdown."""
    app[STREAMS] = set()
    app.router.add_get("/", shell, name="dashboard")
    app.router.add_get("/dashboard", shell, name="dashboard_root")
    app.router.add_get("/dashboard/{page:.*}", shell, name="dashboard_page")
    app.router.add_get("/assets/{name}", asset, name="dashboard_asset")
    app.on_shutdown.append(close_streams)  # long-lived responses end before the runner waits for handlers
