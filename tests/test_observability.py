"""Observability: Prometheus metrics, request ids, JSON structured logs, and no token ever in a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from owp_bot.config import Settings
from owp_bot.keys import SETTINGS
from owp_bot.observability import SLOW_REQUEST, JsonFormatter, access_logged, configure_logging, redact, request_id
from tests.conftest import ADMIN_TOKEN, Pool


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(pool: Pool) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await pool.http.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    return samples(await response.text())


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record of the process, formatted as `owp serve` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter((ADMIN_TOKEN,)))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


async def test_metrics_count_requests_and_domain_events(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, token = await pool.worker()
    before = await scrape(pool)
    offer = (await pool.offers(token))["offers"][0]
    await pool.accept(token, offer["offer_id"])
    await pool.status(task, "released", token=token)
    await pool.reject(token, (await pool.offers(token))["offers"][0]["offer_id"])
    m = await scrape(pool)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return m.get(key, 0) - before.get(key, 0)

    assert delta("owp_offers_total", outcome="made") == 2
    assert delta("owp_offers_total", outcome="accepted") == 1
    assert delta("owp_offers_total", outcome="declined") == 1
    assert delta("owp_leases_granted_total") == 1
    assert m[("owp_tasks", (("status", "ready"),))] == 1
    assert m[("owp_workers_online", ())] == 1
    assert m[("owp_http_requests_total", (("method", "POST"), ("route", "/v1/work/offers"),
                                          ("status", "200")))] == 2
    assert m[("owp_http_request_duration_seconds_count", (("method", "POST"),
                                                         ("route", "/v1/work/offers")))] == 2
    buckets = [m[("owp_http_request_duration_seconds_bucket", (("le", le), ("method", "POST"),
                                                              ("route", "/v1/work/offers")))]
               for le in ("0.001", "0.01", "0.1", "1.0", "5.0", "+Inf")]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative, as Prometheus counts them
    assert 0 < m[("owp_http_request_duration_seconds_sum", (("method", "POST"), ("route", "/v1/work/offers")))] < 10
    assert ("owp_http_requests_total", (("method", "POST"), ("route", "/v1/work/offers/{offer_id}/accept"),
                                        ("status", "201"))) in m  # routes, not ids: labels stay few


async def test_expired_leases_are_counted(pool: Pool) -> None:
    await pool.repo()
    await pool.task()
    _, token = await pool.worker()
    await pool.work(token)
    before = await scrape(pool)
    pool.clock.advance(5 * 3600)
    await pool.repo()  # a write transaction lapses the lease
    m = await scrape(pool)
    assert m[("owp_leases_expired_total", ())] - before.get(("owp_leases_expired_total", ()), 0) == 1


class TestWebhookMetric:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(github_webhook_secret="webhook-secret")

    async def test_deliveries_are_counted_by_outcome(self, pool: Pool) -> None:
        unsigned = await pool.http.post("/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "ping"})
        assert unsigned.status == 401
        m = await scrape(pool)
        assert m[("owp_webhook_deliveries_total", (("outcome", "rejected"),))] == 1


class TestRateLimitMetric:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(rate_limit_address=(1, 60.0))

    async def test_rejections_are_counted(self, pool: Pool) -> None:
        for _ in range(3):
            await pool.http.get("/v1/repos")
        m = await scrape(pool)
        assert m[("owp_ratelimit_rejections_total", (("credential", "address"), ("route", "/v1/repos")))] == 2


async def test_request_ids_are_echoed_or_made(pool: Pool) -> None:
    given = await pool.http.get("/healthz", headers={"X-Request-Id": "trace-42"})
    assert given.headers["X-Request-Id"] == "trace-42"
    made = await pool.http.get("/healthz", headers={"X-Request-Id": "not ok; injected\\r\\n"})
    assert len(made.headers["X-Request-Id"]) == 32 and made.headers["X-Request-Id"] != "not ok; injected"
    again = await pool.http.get("/healthz")
    assert again.headers["X-Request-Id"] != made.headers["X-Request-Id"]  # one per request
    assert again.headers["X-Request-Id"][:16] == made.headers["X-Request-Id"][:16]  # the process's half
    problem = await pool.http.get("/v1/nowhere")
    assert problem.status == 404 and problem.headers["X-Request-Id"]


def access_lines(captured: io.StringIO) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, captured.getvalue().splitlines()) if e["logger"] == "owp_bot.access"]


async def test_problems_are_logged_as_json_lines_with_the_request_id(pool: Pool, captured: io.StringIO) -> None:
    await pool.http.get("/v1/repos", headers={"X-Request-Id": "ok-1"})
    await pool.http.get("/v1/tasks/t_nosuchtask", headers={"X-Request-Id": "abc-123"})
    [access] = access_lines(captured)  # OWP_ACCESS_LOG=problems, the default: the 404, not the 200
    assert (access["message"], access["route"], access["status"], access["method"], access["request_id"]) == (
        "request", "/v1/tasks/{task_id}", 404, "GET", "abc-123")
    assert access["duration_ms"] >= 0 and access["level"] == "info"
    assert access_logged("problems", 200, SLOW_REQUEST) and not access_logged("problems", 200, SLOW_REQUEST / 2)


class TestAccessLogChoices:
    @pytest.fixture(params=["all", "off"])
    def settings(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        return settings.with_overrides(access_log=request.param)

    async def test_all_logs_every_request_and_off_none(self, pool: Pool, captured: io.StringIO) -> None:
        await pool.http.get("/v1/repos")
        await pool.http.get("/v1/tasks/t_nosuchtask")
        statuses = [e["status"] for e in access_lines(captured)]
        assert statuses == ([200, 404] if pool.app[SETTINGS].access_log == "all" else [])


class TestTokens:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(access_log="all")

    async def test_no_token_ever_appears_in_the_logs(self, pool: Pool, captured: io.StringIO,
                                                     caplog: pytest.LogCaptureFixture) -> None:
        await check_no_token_in_the_logs(pool, captured, caplog)


async def check_no_token_in_the_logs(pool: Pool, captured: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await pool.repo()
    worker_id, token = await pool.worker()
    await pool.offers(token)
    await pool.call("GET", f"/v1/workers/{worker_id}/reputation", token=token)
    await pool.call("GET", "/v1/work", token=token + "x", expect=401)  # a wrong token, logged as a failure
    await pool.call("GET", "/v1/tasks", headers={"X-Admin-Token": ADMIN_TOKEN + "x"}, expect=401)
    await pool.call("GET", f"/v1/tasks?token={token}", expect=400)  # a token in the query is not logged
    await pool.http.get("/v1/repos", headers={"Authorization": f"Bearer {token}", "X-Admin-Token": ADMIN_TOKEN})
    formatted, raw = captured.getvalue(), "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    assert formatted.count("owp_bot.access") >= 7  # requests were logged
    for secret in (token, token[4:], ADMIN_TOKEN):
        for line in (formatted + raw).splitlines():
            assert secret not in line, line


def test_the_formatter_masks_tokens_logged_by_mistake() -> None:
    assert redact("Authorization: Bearer owp_abcdefghijklmnopqrstuvwxyz") == "Authorization: [redacted]"
    assert redact("token owp_abcdefghijklmnopqrstuvwxyz in text") == "token [redacted] in text"
    assert redact("x-admin-token=s3cr3t-value rest") == "[redacted] rest"
    record = logging.LogRecord("owp_bot", logging.ERROR, __file__, 1, "admin token is %s", (ADMIN_TOKEN,), None)
    token = request_id.set("rid-1")
    try:
        entry = json.loads(JsonFormatter((ADMIN_TOKEN,)).format(record))
    finally:
        request_id.reset(token)
    assert entry["message"] == "admin token is [redacted]" and entry["request_id"] == "rid-1"


def test_configure_logging_installs_one_json_handler() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging("warning", (ADMIN_TOKEN,), stream)
        logging.getLogger("owp_bot.test").warning("hello %s", ADMIN_TOKEN)
        assert json.loads(stream.getvalue())["message"] == "hello [redacted]"
        assert len(root.handlers) == 1
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
