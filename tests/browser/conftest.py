"""Browser tests: a real OWP server on 127.0.0.1 and Debian's Chromium driven by Playwright (never a
downloaded browser). The dashboard is built from web/ when its build is missing or older than its source."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright

from owp_bot.config import Settings
from owp_bot.web.pages import STATIC_DIR
from tests.conftest import ADMIN_TOKEN, Pool, start_server

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def _newest(paths: list[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


@pytest.fixture(scope="session")
def dashboard_build() -> Path:
    """The built dashboard; built here when missing or stale (as scripts/build-frontends.sh does)."""
    sources = [*WEB.glob("src/**/*"), WEB / "index.html", WEB / "package.json", WEB / "vite.config.ts",
               ROOT / "owp_bot/protocol/openapi.json"]
    index = STATIC_DIR / "index.html"
    if not index.is_file() or index.stat().st_mtime < _newest(sources):
        if not (WEB / "node_modules/.package-lock.json").is_file():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)
        subprocess.run(["npm", "run", "--silent", "build"], cwd=WEB, check=True, capture_output=True)
    return STATIC_DIR


@dataclass
class Dashboard:
    """A live server, a protocol client of it, and a browser page on its dashboard."""

    server: TestServer
    pool: Pool
    page: Page
    browser: Browser
    problems: list[str] = field(default_factory=list)  # page errors and CSP violations seen

    @property
    def app(self) -> web.Application:
        return self.server.app  # type: ignore[return-value]

    def url(self, path: str = "/") -> str:
        return str(self.server.make_url(path))

    async def open(self, path: str = "/") -> None:
        await self.page.goto(self.url(path))

    async def sign_in(self, token: str = ADMIN_TOKEN) -> None:
        await self.page.get_by_label("Admin token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.get_by_test_id("admin-badge").wait_for()

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    async def at_width(self, viewport: dict[str, int], name: str) -> None:
        await self.page.set_viewport_size(viewport)  # type: ignore[arg-type]
        await self.page.wait_for_timeout(150)  # charts resize on the next frame
        await self.screenshot(name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium(dashboard_build: Path) -> AsyncIterator[Browser]:
    """One Chromium for the session (start-up is the slow part); each test gets a fresh context."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def _dashboard(settings: Settings, browser: Browser) -> AsyncIterator[Dashboard]:
    server = await start_server(settings)
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(10_000)
    dashboard = Dashboard(server, Pool(client, None), page, browser)  # type: ignore[arg-type]
    page.on("pageerror", lambda error: dashboard.problems.append(f"page error: {error}"))
    page.on("console", lambda msg: dashboard.problems.append(f"console: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    try:
        yield dashboard
    finally:
        await context.close()
        await client.close()
    assert dashboard.problems == []


@pytest.fixture
def browser_settings(tmp_path: Path) -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db", sweep_interval=3600,
                    heartbeat_flush_interval=0.2, github_webhook_secret="browser-test-webhook-secret")


@pytest_asyncio.fixture(loop_scope="session")
async def dashboard(browser_settings: Settings, chromium: Browser) -> AsyncIterator[Dashboard]:
    async for running in _dashboard(browser_settings, chromium):
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def private_dashboard(browser_settings: Settings, chromium: Browser) -> AsyncIterator[Dashboard]:
    async for running in _dashboard(browser_settings.with_overrides(public_dashboard=False), chromium):
        yield running
