"""Rate limits: every limited route holds its limit under a flood while a well-behaved client on another
credential is still served; registration per address; the webhook is exempt; 429s are problem+json with
Retry-After and RateLimit-* headers, counted at /v1/system/ratelimits."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from owp_bot.app import api_tables
from owp_bot.config import ConfigError, Settings, load_settings, parse_rate
from owp_bot.ratelimit import EXEMPT, TokenBuckets
from tests.conftest import ADMIN_TOKEN, Pool

LIMIT = 3
ROUTES = [(e.method, e.path) for api in api_tables() for e in api.endpoints if e.path not in EXEMPT]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(rate_limit_worker=(LIMIT, 60.0), rate_limit_admin=(LIMIT, 60.0),
                                   rate_limit_address=(LIMIT, 60.0), rate_limit_register=(100, 3600.0))


async def status_of(pool: Pool, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Only the status line and headers: some routes stream (SSE) and never end on their own."""
    async with pool.http.request(method, path, headers=headers) as response:
        return response.status, response.headers


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "x", path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def drain(pool: Pool, headers: dict[str, str]) -> None:
    for _ in range(LIMIT):
        await status_of(pool, "GET", "/v1/repos", headers)


def test_every_route_but_the_exempt_ones_is_limited() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/v1/work/offers", "/v1/workers/register", "/v1/audit/events", "/v1/tasks"} <= paths
    assert "/webhooks/github" in EXEMPT and "/metrics" in EXEMPT


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_a_worker_flood_is_held_on_each_route_and_others_are_served(pool: Pool, method: str,
                                                                          path: str) -> None:
    _, flooder = await pool.worker("flooder")
    _, polite = await pool.worker("polite")
    await drain(pool, bearer(flooder))
    status, headers = await status_of(pool, method, concrete(path), bearer(flooder))
    assert status == 429
    assert int(headers["Retry-After"]) >= 1 and headers["RateLimit-Remaining"] == "0"
    assert headers["Content-Type"].startswith("application/problem+json")
    status, _ = await status_of(pool, method, concrete(path), bearer(polite))
    assert status != 429


async def test_the_429_body_says_what_to_do(pool: Pool) -> None:
    _, token = await pool.worker()
    await drain(pool, bearer(token))
    body = await pool.call("POST", "/v1/work/offers", token=token, expect=429)
    assert body["status"] == 429 and "retry after 20s" in body["detail"]  # 3 per 60 s: one every 20 s
    pool.clock.advance(20)
    await pool.call("POST", "/v1/work/offers", token=token)  # the bucket refilled one request


async def test_answers_carry_ratelimit_headers(pool: Pool) -> None:
    _, token = await pool.worker()
    response = await pool.http.get("/v1/work", headers=bearer(token))
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == (str(LIMIT), "2")
    assert response.headers["RateLimit-Policy"] == f"{LIMIT};w=60"


async def test_an_admin_flood_does_not_stop_workers(pool: Pool) -> None:
    _, token = await pool.worker()
    admin = {"X-Admin-Token": ADMIN_TOKEN}
    await drain(pool, admin)
    assert (await status_of(pool, "GET", "/v1/tasks", admin))[0] == 429
    assert (await status_of(pool, "GET", "/v1/tasks", bearer(token)))[0] == 200


async def test_an_anonymous_flood_is_limited_per_address_and_workers_are_served(pool: Pool) -> None:
    _, token = await pool.worker()  # registering spent one of the address's requests
    statuses = [(await status_of(pool, "GET", "/v1/tasks", {}))[0] for _ in range(LIMIT + 1)]
    assert statuses == [200] * (LIMIT - 1) + [429, 429]
    assert (await status_of(pool, "GET", "/v1/tasks", bearer(token)))[0] == 200


async def test_random_tokens_cannot_buy_fresh_buckets(pool: Pool) -> None:
    _, token = await pool.worker()
    await pool.work(token)  # proven valid before the attack
    statuses = [(await status_of(pool, "GET", "/v1/work", bearer(f"owp_guess{i}")))[0] for i in range(LIMIT + 2)]
    assert statuses == [401] * LIMIT + [429, 429]
    assert (await status_of(pool, "GET", "/v1/work", bearer(token)))[0] == 200


async def test_the_webhook_is_exempt(pool: Pool) -> None:
    statuses = {(await status_of(pool, "POST", "/webhooks/github", {}))[0] for _ in range(LIMIT + 3)}
    assert 429 not in statuses


async def test_the_dashboard_page_is_exempt_but_its_data_calls_are_not(pool: Pool) -> None:
    page = {(await status_of(pool, "GET", "/", {}))[0] for _ in range(LIMIT + 3)}
    assert 429 not in page
    data = {(await status_of(pool, "GET", "/v1/repos", {}))[0] for _ in range(LIMIT + 3)}
    assert 429 in data


class TestRegistration:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(rate_limit_register=(2, 3600.0), rate_limit_address=(100, 60.0))

    async def test_registration_is_limited_per_address(self, pool: Pool) -> None:
        _, token = await pool.worker("one")
        await pool.worker("two")
        refused = await pool.call("POST", "/v1/workers/register", expect=429,
                                  json={"name": "three", "capacity_points": 1})
        assert "registrations from your address" in refused["detail"]
        assert (await status_of(pool, "GET", "/v1/work", bearer(token)))[0] == 200
        report = await pool.call("GET", "/v1/system/ratelimits", admin=True)
        assert {"route": "/v1/workers/register", "credential": "register", "rejected": 1} in report["rejections"]
        assert report["recent"][0]["route"] == "/v1/workers/register"
        assert {r["credential"]: r["requests"] for r in report["limits"]}["register"] == 2


class TestSlowClients:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(body_timeout=0.2)

    async def test_a_trickled_body_gets_408(self, pool: Pool) -> None:
        host, port = pool.http.server.host, pool.http.server.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /v1/workers/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"name\": ")  # and then nothing more
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await writer.wait_closed()
        assert status_line.startswith(b"HTTP/1.1 408")
        await pool.worker()  # others are served meanwhile and after


def test_token_bucket_refills_at_its_rate() -> None:
    buckets = TokenBuckets(2, 10.0)
    assert [buckets.take("k", 0).allowed for _ in range(3)] == [True, True, False]
    assert buckets.take("k", 0).retry_after == 5
    assert buckets.take("k", 5).allowed and not buckets.take("k", 5).allowed
    assert buckets.take("other", 5).allowed


def test_rates_parse_from_the_environment() -> None:
    assert parse_rate("120/1m") == (120, 60.0) and parse_rate("off") is None
    with pytest.raises(ConfigError, match="not a rate"):
        parse_rate("fast")
    env = {"OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_RATE_LIMIT_REGISTER": "5/1h", "OWP_RATE_LIMIT_ADMIN": "off"}
    loaded = load_settings(env)
    assert (loaded.rate_limit_register, loaded.rate_limit_admin, loaded.rate_limit_worker) == (
        (5, 3600.0), None, (120, 60.0))
    off = load_settings({**env, "OWP_RATE_LIMITS": "off"})
    assert (off.rate_limit_register, off.rate_limit_worker, off.rate_limit_address) == (None, None, None)
