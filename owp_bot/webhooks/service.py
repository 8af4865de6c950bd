"""The GitHub App's shared state (client, auth, outbox) behind one app key, and its lifecycle context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from owp_bot.background import running
from owp_bot.keys import CLOCK, SCHEDULER, SETTINGS
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.service import Scheduler
from owp_bot.webhooks.auth import AppAuth, credentials_from
from owp_bot.webhooks.client import GitHubClient
from owp_bot.webhooks.outbox import Outbox, outbox_loop

RELOAD_AT_MOST_EVERY = 1.0  # seconds: a delivery that does not verify reads the stored credentials at most this often


@dataclass
class GitHubApp:
    scheduler: Scheduler
    client: GitHubClient
    auth: AppAuth
    outbox: Outbox
    reloaded_at: float = float("-inf")

    async def reload_credentials(self) -> None:
        stored = await self.scheduler.run(gh.stored_credentials, write=False)
        self.auth.use(credentials_from(self.scheduler.settings, stored))

    async def reload_credentials_now_and_then(self) -> None:
        """For a delivery that does not verify: the app may have been created (again) on another replica since.
        At most once a second, so that unsigned POSTs (webhooks are not rate limited) cost no database reads."""
        now = self.scheduler.clock.now()
        if now - self.reloaded_at >= RELOAD_AT_MOST_EVERY:
            self.reloaded_at = now
            await self.reload_credentials()


GITHUB: web.AppKey[GitHubApp] = web.AppKey("github", GitHubApp)


async def github_ctx(app: web.Application) -> AsyncIterator[None]:
    """One HTTP session to GitHub and the outbox worker; both end with the app."""
    settings, scheduler = app[SETTINGS], app[SCHEDULER]
    async with aiohttp.ClientSession() as session:
        client = GitHubClient(session, settings.github_api_url, app[CLOCK])
        auth = AppAuth(client, app[CLOCK], credentials_from(settings, None), settings.github_token)
        github = GitHubApp(scheduler, client, auth, Outbox(scheduler, client, auth))
        await github.reload_credentials()
        app[GITHUB] = github
        if scheduler.writer is not None:  # a front process: the writer process runs the outbox
            yield
            return
        async with running(outbox_loop(github.outbox, settings.github_outbox_poll), "owp-github-outbox"):
            yield
