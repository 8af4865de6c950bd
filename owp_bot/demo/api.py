"""The demo's endpoints (`POST /v1/demo/start`, `GET /v1/demo/status`) and its lifecycle in the server.

They answer only when the server runs in demo mode (`owp demo`, or OWP_DEMO_MODE=true); otherwise 404, so a
production pool never exposes them. The Obsidian plugin's one-click demo calls `POST /v1/demo/start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from owp_bot.config import Settings
from owp_bot.demo.pulls import WebhookPulls
from owp_bot.demo.scenario import AdminClient, DemoScenario
from owp_bot.devtools.fake_github import FakeGitHub
from owp_bot.errors import Problem
from owp_bot.keys import SETTINGS
from owp_bot.protocol import models as wire
from owp_bot.protocol.routes import Api, Call

log = logging.getLogger(__name__)
demo_api = Api("demo")


class DemoStart(wire.Request):
    workers: int = Field(6, ge=1, le=40, description="how many simulated workers to run")
    seed: int | None = Field(None, description="seed of the simulation's random choices (repeatable runs)")


class DemoWorker(wire.Answer):
    name: str
    github_handle: str
    worker_id: str | None
    state: Literal["starting", "idle", "working", "silent", "stopped"]
    working_on: list[str]
    accepted: int
    declined: int
    prs: int
    merged: int
    closed: int
    silences: int


WORKER_COUNTS = ("accepted", "declined", "prs", "merged", "closed", "silences")


class DemoStatus(wire.Answer):
    state: Literal["not_started", "starting", "running", "stopped", "failed"]
    speed: float = Field(description="simulated seconds per real second")
    simulated_seconds: float
    workers: list[DemoWorker]
    counts: dict[str, int] = Field(description="accepted, declined, prs_opened, merged, closed, silences, …")
    tasks: dict[str, int] = Field(description="tasks by status")
    repos: list[wire.Repo]
    error: str | None = None


class DemoController:
    """Owns the running scenario: at most one at a time, cancelled and awaited when the server stops."""

    def __init__(self, settings: Settings, github: FakeGitHub | None) -> None:
        self.settings = settings
        self.github = github
        self.scenario: DemoScenario | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, base_url: str, *, workers: int = 6, seed: int | None = None) -> DemoScenario:
        if self._task is not None and not self._task.done():
            raise Problem(409, "the demo is already running; watch it on the dashboard (GET /v1/demo/status)")
        if self.github is None:
            raise Problem(409, "this server has no GitHub stand-in for the demo's pull requests; "
                               "start the demo server with `owp demo` (add --no-start to start it from here)")
        pulls = WebhookPulls(self.github, base_url)
        self.scenario = DemoScenario(base_url, self.settings, pulls, workers=workers, seed=seed)
        self._task = asyncio.create_task(self._run(self.scenario), name="owp-demo")
        return self.scenario

    async def _run(self, scenario: DemoScenario) -> None:
        with contextlib.suppress(Exception):  # the scenario logged it and shows it in its status
            await scenario.run()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def status(self) -> DemoStatus:
        scenario = self.scenario
        if scenario is None:
            return DemoStatus(state="not_started", speed=self.settings.demo_speed, simulated_seconds=0,
                              workers=[], counts={}, tasks={}, repos=[])
        async with AdminClient(scenario.base_url, self.settings.admin_token) as admin:
            tasks = Counter(t.status.value for t in await admin.tasks())
            repos = await admin.call(wire.RepoList, "GET", "/v1/repos")
        return DemoStatus(
            state=scenario.state, speed=scenario.speed, simulated_seconds=round(scenario.sim_elapsed, 1),
            workers=[DemoWorker(name=w.profile.name, github_handle=w.profile.github,
                                worker_id=w.worker_id or None, state=w.state,
                                working_on=list(w.working_on), **{k: w.counts[k] for k in WORKER_COUNTS})
                     for w in scenario.workers],
            counts=dict(scenario.counts, failed_webhooks=scenario.pulls.failed_deliveries),
            tasks=dict(sorted(tasks.items())), repos=repos.repos,
            error=scenario.error)


DEMO: web.AppKey[DemoController] = web.AppKey("demo", DemoController)
DEMO_GITHUB: web.AppKey[FakeGitHub] = web.AppKey("demo_github", FakeGitHub)  # set by `owp demo`


def _controller(call: Call) -> DemoController:
    controller = call.request.app.get(DEMO)
    if controller is None:
        raise Problem(404, "the demo runs only in demo mode; start the server with `owp demo`")
    return controller


def _own_url(request: web.Request) -> str:
    """The address this request came in on: the simulated workers call the server back there."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise Problem(503, "cannot tell this server's own address; start the demo with `owp demo`")
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@demo_api.route("POST", "/v1/demo/start", summary="Start the demo's simulated workers (demo mode only)",
                auth="admin", body=DemoStart, responses={202: DemoStatus})
async def start_demo(call: Call) -> tuple[int, BaseModel]:
    """Imports the sample repos and tasks and runs simulated workers against this server; 404 unless the
    server runs in demo mode, 409 while a demo is already running."""
    controller = _controller(call)
    body: DemoStart = call.body
    controller.start(_own_url(call.request), workers=body.workers, seed=body.seed)
    return 202, await controller.status()


@demo_api.route("GET", "/v1/demo/status", summary="The demo's progress: workers, tasks, budgets (demo mode)",
                auth="reader", responses={200: DemoStatus})
async def demo_status(call: Call) -> BaseModel:
    return await _controller(call).status()


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """In demo mode: the controller, and on shutdown the scenario stopped before the database closes."""
    settings = app[SETTINGS]
    if not settings.demo_mode:
        yield
        return
    app[DEMO] = controller = DemoController(settings, app.get(DEMO_GITHUB))
    yield
    await controller.stop()
