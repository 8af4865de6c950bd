"""Observability: Prometheus metrics at GET /metrics, a request id on every request, JSON structured logs.

The registry belongs to the app (no module-level collectors). Request counts and latency are observed by
the middleware; domain counters (leases, offers) are read from the event log at scrape time, from the
sequence number of the last scrape, so a burst of events costs nothing until someone asks. Logs never carry
a token: requests are logged by route and path without query or headers, and a filter masks anything that
looks like a worker token, a bearer credential or the admin token in any message.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from owp_bot.keys import SCHEDULER, SETTINGS
from owp_bot.protocol.routes import Api, Call
from owp_bot.ratelimit import RATE_LIMITER, route_name
from owp_bot.scheduler.models import TaskStatus
from owp_bot.scheduler.store import Op, one, rows

log = logging.getLogger("owp_bot.access")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_ids() -> Iterator[str]:
    """Ids for requests that bring none: 32 hex digits, a random half per process and a counter. They tell
    requests apart in logs, across replicas too; nothing relies on them being unguessable, and a random
    one per request (os.urandom) was 6% of a heartbeat's CPU."""
    process = secrets.token_hex(8)
    return (f"{process}{n:016x}" for n in itertools.count(1))


_made_ids = _request_ids()
WEBHOOK_PATH = "/webhooks/github"
SLOW_REQUEST = 1.0  # seconds: a request this slow is logged under OWP_ACCESS_LOG=problems
# event type -> (counter name, label) of the domain counters read from the log
EVENT_COUNTERS = {
    "lease.granted": ("leases_granted", None), "lease.expired": ("leases_expired", None),
    "offer.created": ("offers", "made"), "offer.accepted": ("offers", "accepted"),
    "offer.rejected": ("offers", "declined"), "offer.expired": ("offers", "expired"),
}

metrics_api = Api("system")


class RequestStats:
    """Request counts by route, method and status, latency histograms by route and method, webhook deliveries by
    outcome and rate-limit refusals by route and credential, kept in plain dicts and handed to prometheus_client
    when /metrics is scraped. Its Counter.inc and Histogram.observe take a lock each and walk the buckets in
    Python: a few µs on every request, where this is a dict update. Plain dicts also add up: the writer process
    of `owp serve --processes N` answers /metrics with the sum of its fronts' (writer_link.py)."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
    LE = (*map(repr, BUCKETS), "+Inf")  # the buckets' labels, as Prometheus writes them

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}  # per bucket (+Inf last); sum
        self.webhooks: dict[str, int] = {}  # accepted: 2xx, rejected: 4xx, failed: 5xx
        self.rate_limited: dict[tuple[str, str], int] = {}  # (route, credential)

    def snapshot(self) -> RequestStats:
        """A copy, which later requests do not change."""
        copy = RequestStats()
        copy.add(self)
        return copy

    def add(self, other: RequestStats) -> None:
        for answered, n in other.counts.items():
            self.counts[answered] = self.counts.get(answered, 0) + n
        for route, (buckets, total) in other.latency.items():
            mine = self.latency.setdefault(route, ([0] * (len(self.BUCKETS) + 1), [0.0]))
            mine[0][:] = [a + b for a, b in zip(mine[0], buckets, strict=True)]
            mine[1][0] += total[0]
        for outcome, n in other.webhooks.items():
            self.webhooks[outcome] = self.webhooks.get(outcome, 0) + n
        for pair, n in other.rate_limited.items():
            self.rate_limited[pair] = self.rate_limited.get(pair, 0) + n

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.latency.get((route, method))
        if histogram is None:
            histogram = self.latency[(route, method)] = ([0] * (len(self.BUCKETS) + 1), [0.0])
        histogram[0][bisect.bisect_left(self.BUCKETS, seconds)] += 1  # the first bucket with seconds <= le
        histogram[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("owp_http_requests", "HTTP requests by route, method and status",
                                       labels=["route", "method", "status"])
        for (route, method, status), n in sorted(self.counts.items()):
            requests.add_metric([route, method, str(status)], n)
        latency = HistogramMetricFamily("owp_http_request_duration_seconds", "Time to answer, by route and method",
                                        labels=["route", "method"])
        for (route, method), (buckets, total) in sorted(self.latency.items()):
            latency.add_metric([route, method], list(zip(self.LE, itertools.accumulate(buckets), strict=True)),
                               total[0])
        webhooks = CounterMetricFamily("owp_webhook_deliveries", "GitHub webhook deliveries by outcome "
                                       "(accepted: 2xx, rejected: 4xx such as a bad signature, failed: 5xx)",
                                       labels=["outcome"])
        for outcome, n in sorted(self.webhooks.items()):
            webhooks.add_metric([outcome], n)
        refused = CounterMetricFamily("owp_ratelimit_rejections", "Requests refused with 429",
                                      labels=["route", "credential"])
        for (route, credential), n in sorted(self.rate_limited.items()):
            refused.add_metric([route, credential], n)
        return iter((requests, latency, webhooks, refused))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = RequestStats()
        r.register(self.requests)
        self.leases_granted = Counter("owp_leases_granted", "Leases granted", registry=r)
        self.leases_expired = Counter("owp_leases_expired", "Leases that expired", registry=r)
        self.offers = Counter("owp_offers", "Offers by outcome: made, accepted, declined, expired",
                              ["outcome"], registry=r)
        self.tasks = Gauge("owp_tasks", "Tasks by status", ["status"], registry=r)
        self.workers_online = Gauge("owp_workers_online", "Workers that sent a heartbeat within the timeout",
                                    registry=r)
        self.last_seq: int | None = None
        self.sampling = asyncio.Lock()  # one scrape at a time counts the events since the last: each once

    def answered(self, route: str, method: str, status: int, seconds: float, webhook: bool) -> None:
        self.requests.answered(route, method, status, seconds)
        if webhook:
            outcome = "accepted" if status < 400 else "rejected" if status < 500 else "failed"
            self.requests.webhooks[outcome] = self.requests.webhooks.get(outcome, 0) + 1

    def rate_limit_rejected(self, route: str, credential: str) -> None:
        key = (route, credential)
        self.requests.rate_limited[key] = self.requests.rate_limited.get(key, 0) + 1

    def apply(self, sample: Sample) -> None:
        for event_type, n in sample.event_counts.items():
            name, label = EVENT_COUNTERS[event_type]
            counter = getattr(self, name)
            (counter.labels(label) if label else counter).inc(n)
        for status in TaskStatus:
            self.tasks.labels(status.value).set(sample.tasks.get(status.value, 0))
        self.workers_online.set(sample.workers_online)
        self.last_seq = sample.last_seq


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


@dataclass(frozen=True, slots=True)
class Sample:
    event_counts: dict[str, int]
    tasks: dict[str, int]
    workers_online: int
    last_seq: int


def sample(after_seq: int | None, online_since: float) -> Op[Sample]:
    """The state gauges, and domain events since the last scrape (none counted on the first: a baseline)."""
    last = int((yield one("events_last_seq"))["seq"])
    counts: dict[str, int] = {}
    if after_seq is not None:
        counts = {r["type"]: r["n"] for r in (yield rows("an_event_counts_since", after_seq, last))}
    tasks = {r["status"]: r["n"] for r in (yield rows("an_task_status_counts"))}
    online = int((yield one("an_workers_online", online_since))["n"])
    return Sample(counts, tasks, online, last)


@metrics_api.route("GET", "/metrics", summary="Prometheus metrics (text exposition format)", auth="none",
                   responses={200: None})
async def get_metrics(call: Call) -> web.StreamResponse:
    """The pool's metrics, whichever process of `owp serve --processes N` the scrape reaches (its writer process
    answers, with the request counters of every process summed: writer_link.py)."""
    app = call.request.app
    link = app[SCHEDULER].writer
    text = await (link.metrics(app[METRICS].requests.snapshot()) if link is not None else exposition(app))
    response = web.Response(body=text)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def exposition(app: web.Application, requests: RequestStats | None = None) -> bytes:
    """The metrics of `app`'s process, its domain counters brought up to the log's end; with `requests` (the
    writer process), those instead of its own."""
    metrics, scheduler = app[METRICS], app[SCHEDULER]
    online_since = scheduler.now() - scheduler.settings.heartbeat_timeout
    async with metrics.sampling:  # two scrapes at once would each count the events since the same last_seq
        metrics.apply(await scheduler.run(sample, metrics.last_seq, online_since, write=False))
    if requests is not None:
        metrics.requests.counts, metrics.requests.latency = requests.counts, requests.latency
        metrics.requests.webhooks, metrics.requests.rate_limited = requests.webhooks, requests.rate_limited
    return bytes(generate_latest(metrics.registry))


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the domain counters at the log's current end: they count what happens while this process runs."""
    scheduler = app[SCHEDULER]
    online_since = scheduler.now() - scheduler.settings.heartbeat_timeout
    app[METRICS].apply(await scheduler.run(sample, None, online_since, write=False))
    yield


@web.middleware
async def observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """Request id (X-Request-Id, echoed or made), request metrics and one structured access-log line."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else next(_made_ids)
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_name(request)
        request.app[METRICS].answered(route, request.method, status, elapsed, request.path == WEBHOOK_PATH)
        if access_logged(request.app[SETTINGS].access_log, status, elapsed) and log.isEnabledFor(logging.INFO):
            log.info("request", extra={"method": request.method, "route": route, "path": request.path,
                                       "status": status, "duration_ms": round(elapsed * 1000, 2),
                                       "remote": request.remote})
        request_id.reset(token)


def access_logged(access_log: str, status: int, seconds: float) -> bool:
    """OWP_ACCESS_LOG: `problems` (the default) logs what failed or was slow, `all` every request. A line per
    heartbeat of a thousand workers would bury the rest of the log, and writing it cost a heartbeat as much as
    answering it."""
    if access_log == "problems":
        return status >= 400 or seconds >= SLOW_REQUEST
    return access_log == "all"


def install(app: web.Application) -> None:
    app[METRICS] = Metrics()
    app[RATE_LIMITER].on_reject.append(app[METRICS].rate_limit_rejected)


# ------------------------------------------------------------------ logs

# Worker tokens (owp_…) and bearer credentials are masked everywhere, known secrets (the admin token) too.
_TOKEN = re.compile(r"owp_[A-Za-z0-9_-]{16,}|(?i:bearer)\s+[^\s\"]+|(?i:x-admin-token)[\"':=\s]+[^\s\"]+")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return _TOKEN.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the record's extra fields."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, separators=(",", ":")), self.secrets)


def configure_logging(level: str = "INFO", secrets: tuple[str, ...] = (), stream: Any = None
                      ) -> logging.Handler:
    """JSON lines on stderr (or `stream`) for the whole process; `owp serve` calls it once with the admin
    token among `secrets`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
