"""Rate limits: token buckets per worker token, per admin token and per client address.

A request carrying a worker token (Bearer) or the admin token (X-Admin-Token) spends from that credential's
bucket; a request without one spends from its address's bucket. A token that fails authentication spends
from its address's failed-authentication bucket (same rule as the address's), and once that is empty, tokens
not yet seen valid are refused from that address, so that random tokens cannot buy fresh buckets.
Registration also spends from a per-address bucket of its own (it is the open door). The GitHub webhook
(signed), health checks and /metrics are exempt. An empty bucket answers 429 problem+json with Retry-After
and RateLimit-* headers. A request body must arrive within OWP_BODY_TIMEOUT, or the answer is 408: a slow
client cannot hold a handler open by trickling its body.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from cachetools import LRUCache
from pydantic import BaseModel

from owp_bot.clock import to_datetime
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.keys import CLOCK, SETTINGS
from owp_bot.protocol import models as wire
from owp_bot.protocol.routes import Api, Call

EXEMPT = ("/webhooks/github", "/healthz", "/readyz", "/metrics", "/")
# the dashboard's page and its static files (cached, no data): its API calls are limited like any other's
EXEMPT_PREFIXES = ("/assets/", "/dashboard")
REGISTER_PATH = "/v1/workers/register"
MAX_BUCKETS = 100_000  # least recently used buckets are forgotten (a forgotten bucket starts full)
RECENT = 100

ratelimit_api = Api("system")


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one request is allowed (0 when allowed)

    def headers(self, period: float) -> dict[str, str]:
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset), "RateLimit-Policy": f"{self.limit};w={int(period)}"}


class TokenBuckets:
    """Buckets of `capacity` requests refilled at `capacity / period` per second, keyed by credential."""

    def __init__(self, capacity: int, period: float) -> None:
        self.capacity = capacity
        self.period = period
        self.rate = capacity / period
        self._buckets: LRUCache[str, Bucket] = LRUCache(MAX_BUCKETS)

    def take(self, key: str, now: float, spend: bool = True) -> Verdict:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(float(self.capacity), now)
        bucket.tokens = min(self.capacity, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1
        if allowed and spend:
            bucket.tokens -= 1
        retry = 0 if allowed else math.ceil((1 - bucket.tokens) / self.rate)
        reset = math.ceil((self.capacity - bucket.tokens) / self.rate)
        return Verdict(allowed, self.capacity, int(bucket.tokens), reset, retry)


@dataclass(frozen=True, slots=True)
class Rejection:
    ts: float
    route: str
    credential: str


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        rules = {"worker": settings.rate_limit_worker, "admin": settings.rate_limit_admin,
                 "address": settings.rate_limit_address, "register": settings.rate_limit_register}
        self.buckets = {kind: TokenBuckets(*rule) for kind, rule in rules.items() if rule is not None}
        if settings.rate_limit_address is not None:
            self.buckets["failed_auth"] = TokenBuckets(*settings.rate_limit_address)
        self._valid: LRUCache[str, bool] = LRUCache(MAX_BUCKETS)  # credential keys seen authenticated
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.recent: deque[Rejection] = deque(maxlen=RECENT)
        self.on_reject: list[Callable[[str, str], None]] = []  # (route, credential kind): metrics

    @staticmethod
    def credential(request: web.Request) -> tuple[str, str] | None:
        """("worker" | "admin", hash of the token) — the key is a hash, never the secret."""
        admin = request.headers.get("X-Admin-Token")
        bearer = request.headers.get("Authorization", "")
        if not (admin or bearer):
            return None
        return ("admin" if admin else "worker"), hashlib.sha256((admin or bearer).encode()).hexdigest()

    def check(self, request: web.Request, credential: tuple[str, str] | None, now: float
              ) -> tuple[Verdict | None, str]:
        """Spend from every bucket the request is charged to; the verdict that limits it (or the last one)."""
        address = request.remote or "unknown"
        charges: list[tuple[str, str, bool]] = []  # (kind, key, spend)
        if request.path == REGISTER_PATH and request.method == "POST":
            charges.append(("register", address, True))
        if credential is None:
            charges.append(("address", address, True))
        else:
            if credential[1] not in self._valid:  # unproven token: refused once its address failed too often
                charges.append(("failed_auth", address, False))
            charges.append((*credential, True))
        last: tuple[Verdict | None, str] = (None, "")
        for kind, key, spend in charges:
            buckets = self.buckets.get(kind)
            if buckets is None:
                continue
            verdict = buckets.take(key, now, spend)
            if not verdict.allowed:
                return verdict, kind
            if spend:
                last = (verdict, kind)
        return last

    def answered(self, request: web.Request, credential: tuple[str, str] | None, status: int, now: float) -> None:
        """Remember tokens that authenticated; make a failed one spend from its address's bucket."""
        if credential is None:
            return
        if status == 401:
            if "failed_auth" in self.buckets:
                self.buckets["failed_auth"].take(request.remote or "unknown", now)
        elif credential[1] not in self._valid:
            self._valid[credential[1]] = True

    def record(self, route: str, kind: str, now: float) -> None:
        self.rejected[(route, kind)] += 1
        self.recent.append(Rejection(now, route, kind))
        for listener in self.on_reject:
            listener(route, kind)


RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)


def route_name(request: web.Request) -> str:
    """The route template (`/v1/tasks/{task_id}`), so that labels and counts do not grow per id."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def rate_limit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    limiter = request.app[RATE_LIMITER]
    if not limiter.buckets or request.path in EXEMPT or request.path.startswith(EXEMPT_PREFIXES):
        if request.body_exists:
            await read_body(request)
        return await handler(request)
    now, credential = request.app[CLOCK].now(), limiter.credential(request)
    verdict, kind = limiter.check(request, credential, now)
    if verdict is not None and not verdict.allowed:
        route = route_name(request)
        limiter.record(route, kind, now)
        what = {"register": "registrations from your address", "address": "requests from your address",
                "failed_auth": "failed authentications from your address",
                "worker": "requests with this worker token", "admin": "requests with the admin token"}[kind]
        raise Problem(429, f"too many {what} ({verdict.limit} per {limiter.buckets[kind].period:g}s); "
                           f"retry after {verdict.retry_after}s",
                      headers={"Retry-After": str(verdict.retry_after),
                               **verdict.headers(limiter.buckets[kind].period)})
    if request.body_exists:
        await read_body(request)
    try:
        response = await handler(request)
    except Problem as problem:
        limiter.answered(request, credential, problem.status, now)
        raise
    limiter.answered(request, credential, response.status, now)
    if verdict is not None and not response.prepared:
        response.headers.update(verdict.headers(limiter.buckets[kind].period))
    return response


async def read_body(request: web.Request) -> None:
    """Read (and cache: handlers read it again for free) the body within the body timeout."""
    if request.content.is_eof():  # all of it came with the headers (a small JSON body, as usual): no timer
        await request.read()
        return
    timeout = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(timeout):
            await request.read()
    except TimeoutError:
        raise Problem(408, f"the request body did not arrive within {timeout:g}s; send it at once",
                      title="Request timeout") from None


def install(app: web.Application, settings: Settings) -> None:
    app[RATE_LIMITER] = RateLimiter(settings)


# ------------------------------------------------------------------ endpoint


@ratelimit_api.route("GET", "/v1/system/ratelimits", summary="Configured limits and recent 429 rejections",
                     auth="admin", responses={200: wire.RateLimits})
async def get_ratelimits(call: Call) -> BaseModel:
    limiter = call.request.app[RATE_LIMITER]
    return wire.RateLimits(
        limits=[wire.RateLimitRule(credential=kind, requests=b.capacity, per_seconds=b.period)
                for kind, b in limiter.buckets.items()],
        exempt=list(EXEMPT),
        rejections=[wire.RateLimitCount(route=route, credential=kind, rejected=n)
                    for (route, kind), n in limiter.rejected.most_common()],
        recent=[wire.RateLimitRejection(ts=to_datetime(r.ts), route=r.route, credential=r.credential)
                for r in reversed(limiter.recent)],
    )

