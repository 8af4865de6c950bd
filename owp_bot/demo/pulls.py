"""The demo's one seam to GitHub: pull requests of simulated workers, on the local GitHub stand-in.

`WebhookPulls` opens, merges and closes pull requests on `FakeGitHub`, which delivers signed `pull_request`
webhooks to the pool — so a demo PR moves its task through the same receiver, verification and operations as
a real one. `demo_github` starts the stand-in with a fresh app key and webhook secret and returns the pool
settings that trust it (its API URL for the pool's write-back, the app id and key, the secret).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from owp_bot.config import Settings
from owp_bot.devtools.fake_github import FakeGitHub, FakeIssue
from owp_bot.protocol import models as wire

DEMO_APP_ID = 1
DEMO_INSTALLATION_ID = 1
MAINTAINER = "acme-maintainer"


@dataclass(frozen=True)
class PullRequest:
    repo: str
    number: int
    task_id: str
    author: str


@asynccontextmanager
async def demo_github(settings: Settings) -> AsyncIterator[tuple[FakeGitHub, Settings]]:
    """The GitHub stand-in on 127.0.0.1, and `settings` pointed at it (never at the real GitHub)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    secret = secrets.token_urlsafe(24)
    async with FakeGitHub(webhook_secret=secret, app_id=DEMO_APP_ID, app_private_key=pem) as fake:
        yield fake, settings.with_overrides(github_api_url=fake.url, github_app_id=DEMO_APP_ID,
                                            github_private_key=pem, github_webhook_secret=secret,
                                            github_token=None)


class WebhookPulls:
    """Each demo task is an issue on the stand-in; a worker's PR says `Closes #N` from branch `owp/<task>`."""

    def __init__(self, fake: FakeGitHub, pool_url: str) -> None:
        self.fake = fake
        self.fake.connect(pool_url)
        self._issues: dict[str, int] = {}  # task id -> issue number

    async def prepare(self, tasks: list[wire.Task]) -> None:
        """The repos as installed, with the tasks' issues open and labelled, as the maintainer left them."""
        for task in tasks:
            if task.issue_number is None:
                continue
            repo = self.fake.add_repo(task.repo, DEMO_INSTALLATION_ID)
            issue = FakeIssue(task.issue_number, task.title, None, MAINTAINER, ["pool:ready"])
            repo.issues.setdefault(task.issue_number, issue)
            repo.next_number = max(repo.next_number, task.issue_number + 1)
            self._issues[task.task_id] = task.issue_number

    async def open(self, offer: wire.Offer, author: str) -> PullRequest:
        number = self._issues.get(offer.task_id)
        body = f"Closes #{number}\n\nOpened by a simulated worker in the OWP Pool demo." if number else None
        pull = await self.fake.open_pull(offer.repo, title=offer.title, body=body,
                                         head_ref=f"owp/{offer.task_id}", user=author)
        return PullRequest(offer.repo, pull.number, offer.task_id, author)

    async def merge(self, pull: PullRequest) -> None:
        await self.fake.merge_pull(pull.repo, pull.number, sender=MAINTAINER)

    async def close(self, pull: PullRequest) -> None:
        await self.fake.close_pull(pull.repo, pull.number, sender=MAINTAINER)

    @property
    def failed_deliveries(self) -> int:
        """Webhooks the pool refused (it lists them: GET /v1/github/deliveries?outcome=failed)."""
        return sum(1 for d in self.fake.deliveries if d.status >= 400)
