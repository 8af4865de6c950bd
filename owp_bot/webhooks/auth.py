"""Who the bot is to GitHub: the app's credentials, its JWT (RS256) and cached installation tokens.

Credentials come from GITHUB_APP_ID / GITHUB_PRIVATE_KEY(_PATH) / GITHUB_WEBHOOK_SECRET, or else from the
app-manifest flow (stored in the database). An installation token is fetched once and reused until shortly
before its `expires_at` (a TTL cache on the injected clock): one token request per installation per hour,
not one per delivery. Without an installation, a plain GITHUB_TOKEN can still read public issues.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cachetools import TLRUCache

from owp_bot.clock import Clock
from owp_bot.config import Settings
from owp_bot.webhooks.client import GitHubClient, NotConfigured

REFRESH_BEFORE = 5 * 60  # a token is replaced this long before GitHub's expires_at
JWT_LIFETIME = 9 * 60  # GitHub accepts at most 10 minutes
CLOCK_DRIFT = 60  # iat in the past, as GitHub recommends


@dataclass(frozen=True)
class AppCredentials:
    app_id: int | None
    private_key: str | None
    webhook_secret: str | None
    slug: str | None = None
    source: str = "environment"

    @property
    def can_sign(self) -> bool:
        return self.app_id is not None and bool(self.private_key)


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: float


def credentials_from(settings: Settings, stored: Any) -> AppCredentials:
    """The environment wins, field by field; the manifest flow's stored ones fill the rest."""
    if stored is None:
        return AppCredentials(
            settings.github_app_id, settings.github_private_key, settings.github_webhook_secret
        )
    from_env = settings.github_app_id is not None
    return AppCredentials(
        app_id=settings.github_app_id if from_env else stored["app_id"],
        private_key=settings.github_private_key if from_env else stored["private_key"],
        webhook_secret=settings.github_webhook_secret or stored["webhook_secret"],
        slug=stored["slug"],
        source="environment" if from_env else "manifest",
    )


class AppAuth:
    def __init__(
        self, client: GitHubClient, clock: Clock, credentials: AppCredentials, static_token: str | None = None
    ) -> None:
        self.client = client
        self.clock = clock
        self.credentials = credentials
        self.static_token = static_token
        self._tokens: TLRUCache[int, InstallationToken] = TLRUCache(
            maxsize=4096, ttu=lambda _key, value, _now: value.expires_at - REFRESH_BEFORE, timer=clock.now
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self.token_requests = 0

    def use(self, credentials: AppCredentials) -> None:
        if credentials == self.credentials:
            return  # the cached tokens stay good
        self.credentials = credentials
        self._tokens.clear()

    def app_jwt(self) -> str:
        creds = self.credentials
        if not creds.can_sign:
            raise NotConfigured(
                0,
                "no GitHub App credentials: set GITHUB_APP_ID and GITHUB_PRIVATE_KEY "
                "(or create the app at /github/setup)",
            )
        now = int(self.clock.now())
        claims = {"iat": now - CLOCK_DRIFT, "exp": now + JWT_LIFETIME, "iss": str(creds.app_id)}
        return jwt.encode(claims, creds.private_key, algorithm="RS256")  # type: ignore[arg-type]

    async def installation_token(self, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached is not None:
            return cached.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # concurrent callers share one request
            cached = self._tokens.get(installation_id)
            if cached is not None:
                return cached.token
            body, _ = await self.client.call(
                "POST", f"/app/installations/{installation_id}/access_tokens", jwt=self.app_jwt()
            )
            self.token_requests += 1
            expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
            token = InstallationToken(body["token"], expires_at)
            self._tokens[installation_id] = token
            return token.token

    async def token_for(self, installation_id: int | None) -> str:
        """The token to act on a repo: its installation's, or else the plain GITHUB_TOKEN (GitHub decides
        what that one may do; a read-only token is enough to import issues)."""
        if installation_id is not None and self.credentials.can_sign:
            return await self.installation_token(installation_id)
        if self.static_token:
            return self.static_token
        raise NotConfigured(
            0,
            "the app is not installed on this repo and no GITHUB_TOKEN is set; install the "
            "app on the repo (or set GITHUB_TOKEN for read-only import)",
        )
