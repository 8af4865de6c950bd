"""`create_app(settings)`: wires the store, scheduler, event hub, endpoint tables and background work."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from owp_bot import __version__, observability, ratelimit
from owp_bot.clock import Clock, SystemClock
from owp_bot.config import Settings
from owp_bot.demo.api import demo_api, demo_ctx
from owp_bot.errors import Problem
from owp_bot.events import EventHub, SequencedHub
from owp_bot.keys import CLOCK, HUB, SCHEDULER, SETTINGS, STORE
from owp_bot.protocol import models as wire
from owp_bot.protocol.routes import Api, Call
from owp_bot.protocol.spec import SPEC_PATH, build_spec
from owp_bot.scheduler.analytics import analytics_api, insights_ctx, trust_api
from owp_bot.scheduler.api import admin_api, work_api, workers_api
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import Scheduler
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Store
from owp_bot.scheduler.sweeper import sweeper_ctx
from owp_bot.scheduler.writer_link import WriterLink
from owp_bot.web.pages import add_dashboard, dashboard_api
from owp_bot.web.stream import stream_api
from owp_bot.webhooks.receiver import github_api
from owp_bot.webhooks.service import github_ctx
from owp_bot.webhooks.setup import setup_api

log = logging.getLogger("owp_bot")
PROBLEM_TYPE = "application/problem+json"

health_api = Api("health")


@health_api.route("GET", "/healthz", summary="The process is up", auth="none", responses={200: wire.Health})
async def healthz(call: Call) -> wire.Health:
    return wire.Health(status="ok", version=__version__)


@health_api.route("GET", "/readyz", summary="The database answers and migrations are applied", auth="none",
                  responses={200: wire.Health, 503: wire.Health})
async def readyz(call: Call) -> tuple[int, wire.Health]:
    ready = await call.request.app[STORE].ready()
    return (200 if ready else 503), wire.Health(status="ok" if ready else "unavailable", version=__version__,
                                                checks={"database": ready})


def api_tables() -> list[Api]:
    """Every endpoint table of the server; the OpenAPI spec documents exactly these."""
    return [health_api, workers_api, work_api, admin_api, dashboard_api, stream_api, demo_api,
            trust_api, analytics_api, ratelimit.ratelimit_api, observability.metrics_api, github_api,
            setup_api]


def _problem_response(problem: Problem, request: web.Request) -> web.Response:
    headers = {k: str(v) for k, v in problem.extra.pop("headers", {}).items()} if "headers" in problem.extra else {}
    return web.Response(status=problem.status, text=json.dumps(problem.body(request.path)),
                        content_type=PROBLEM_TYPE, headers=headers)


@web.middleware
async def problems(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
    """Every error answers application/problem+json with a detail that says what to do."""
    try:
        return await handler(request)
    except Problem as problem:
        return _problem_response(problem, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = {
            404: f"no endpoint at {request.path}; see /openapi.json for the API",
            405: f"{request.method} is not allowed on {request.path}; see /openapi.json",
            413: f"the body is larger than this server accepts ({request.app[SETTINGS].max_body_bytes} bytes)",
        }.get(exc.status, exc.reason)
        response = _problem_response(Problem(exc.status, detail), request)
        if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods that are allowed
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _problem_response(Problem(500, "the server failed to answer; the error is in its log"), request)


def create_app(settings: Settings, *, clock: Clock | None = None, store: Store | None = None,
               writer_socket: Path | None = None) -> web.Application:
    """The whole pool in one process; or, with `writer_socket`, a front process of `owp serve --processes N`: it
    reads on its own, sends its writes to the writer process there, takes its events from it, and runs no
    background work (the writer process does; writer_link.py)."""
    # outermost first: request id + metrics + access log see every answer, then problems, then rate limits
    app = web.Application(middlewares=[observability.observe, problems, ratelimit.rate_limit],
                          client_max_size=settings.max_body_bytes,
                          handler_args={"max_line_size": settings.max_header_bytes,
                                        "max_field_size": settings.max_header_bytes,
                                        "keepalive_timeout": settings.keepalive_timeout,
                                        "access_log": None})  # observability.observe logs, without query
    ratelimit.install(app, settings)
    observability.install(app)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    front = writer_socket is not None
    if store is None and settings.database_url:  # several replicas on PostgreSQL; SQLite is the default
        store = PostgresStore(settings.database_url, writes=not front)
    store = store or SQLiteStore(settings.db_path, writes=not front)
    app[STORE] = store
    # on PostgreSQL the hub also carries other replicas' events, in sequence order; in a front, the writer's
    app[HUB] = SequencedHub() if front else store.hub if isinstance(store, PostgresStore) else EventHub()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await app[STORE].open()
        link = None
        try:
            if writer_socket is not None:
                link = WriterLink(writer_socket, app[HUB], settings)
                await link.open()
            app[SCHEDULER] = Scheduler(app[STORE], settings, app[CLOCK], app[HUB], writer=link)
            yield
        finally:
            if link is not None:
                await link.close()
            await app[STORE].close()

    app.cleanup_ctx.append(store_ctx)
    # subsystems add their own background work here (one cleanup context each), where the writes are made
    if not front:
        app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(github_ctx)  # GitHub session, and where the writes are made the outbox worker
    if not front:
        app.cleanup_ctx.append(insights_ctx)  # review-budget samples and event retention
    app.cleanup_ctx.append(observability.metrics_ctx)
    if not front:
        app.cleanup_ctx.append(demo_ctx)  # demo mode only: the simulated workers, stopped before the store closes
    for table in api_tables():
        table.add_to(app)
    spec_text = SPEC_PATH.read_text(encoding="utf-8") if SPEC_PATH.exists() else json.dumps(build_spec(api_tables()))

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(text=spec_text, content_type="application/json")

    app.router.add_get("/openapi.json", openapi, name="openapi")
    add_dashboard(app)
    return app
