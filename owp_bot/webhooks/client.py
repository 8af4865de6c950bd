"""Calls to GitHub's REST API, and what their failures mean for the caller.

Every failure becomes a `GitHubError` that says whether to retry and when: a rate limit (403/429 with
`Retry-After` or `x-ratelimit-reset`) names the moment it lifts, a 5xx or a broken connection is
transient, a 404 (or the 410 of a deleted issue) means the thing is gone, anything else is permanent.
Nothing here sleeps: the outbox reschedules the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from gidgethub import sansio

from owp_bot.clock import Clock

USER_AGENT = "owp-pool"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
DEFAULT_RATE_LIMIT_WAIT = 60.0


@dataclass
class GitHubError(Exception):
    status: int  # 0: no answer (connection failed)
    message: str
    retry_at: float | None = None  # a rate limit: not before this time
    transient: bool = False  # 5xx or no answer: retry with backoff

    def __str__(self) -> str:
        return f"GitHub answered {self.status or 'nothing'}: {self.message}"

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


class NotConfigured(GitHubError):
    """This pool cannot make the call at all (no credentials for the repo): not GitHub's answer, not retried."""

    def __str__(self) -> str:
        return self.message


def failure(status: int, headers: Any, message: str, now: float) -> GitHubError:
    """Classify a non-2xx answer."""
    if status in (403, 429):
        retry_after = headers.get("Retry-After")
        if retry_after and retry_after.strip().isdigit():
            return GitHubError(status, message, retry_at=now + int(retry_after))
        reset = headers.get("x-ratelimit-reset")
        if headers.get("x-ratelimit-remaining") == "0" and reset and reset.strip().isdigit():
            return GitHubError(status, message, retry_at=max(float(reset), now + 1))
        if status == 429 or "rate limit" in message.lower():
            return GitHubError(status, message, retry_at=now + DEFAULT_RATE_LIMIT_WAIT)
    return GitHubError(status, message, transient=status >= 500)


class GitHubClient:
    """A thin REST client: one aiohttp session, a base URL (GITHUB_API_URL), tokens passed per call."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, clock: Clock, timeout: float = 10.0
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        jwt: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        headers = sansio.create_headers(
            USER_AGENT, oauth_token=token, jwt=jwt, accept="application/vnd.github+json"
        )
        headers["X-GitHub-Api-Version"] = "2022-11-28"
        try:
            async with self.session.request(
                method, url, headers=headers, json=json, params=params, timeout=self.timeout
            ) as response:
                body = await response.json(content_type=None) if response.status != 204 else None
                answer_headers = dict(response.headers)
                if response.status >= 400:
                    message = (
                        body.get("message", response.reason) if isinstance(body, dict) else response.reason
                    )
                    raise failure(response.status, response.headers, str(message), self.clock.now())
                return body, answer_headers
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise GitHubError(0, f"{method} {path} failed: {exc!r}", transient=True) from exc

    async def paginate(
        self, path: str, *, token: str | None = None, params: dict[str, str] | None = None, limit: int = 5000
    ) -> list[Any]:
        """Every item of a list endpoint, following `Link: <…>; rel="next"`."""
        items: list[Any] = []
        url: str | None = path
        query: dict[str, str] | None = {"per_page": "100", **(params or {})}
        while url and len(items) < limit:
            page, headers = await self.call("GET", url, token=token, params=query)
            items += page
            match = _NEXT.search(headers.get("Link", ""))
            url, query = (match.group(1), None) if match else (None, None)
        return items[:limit]


def repo_path(repo: str, *rest: str | int) -> str:
    return "/repos/" + repo + "".join("/" + quote(str(part), safe="") for part in rest)
