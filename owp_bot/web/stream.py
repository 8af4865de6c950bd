"""`GET /v1/events/stream`: the event log as Server-Sent Events, resumable by sequence number.

A stream subscribes to the in-process hub first, then replays the log after the client's `Last-Event-ID`,
then forwards live events, skipping any sequence it already sent: no gaps, no duplicates. A client that
falls behind is dropped (the hub overflows its bounded queue) and resumes from the log when it reconnects.
The public stream carries an allow-list of event types and detail fields; the admin stream carries all.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from pydantic import BaseModel, Field

from owp_bot.clock import to_datetime
from owp_bot.errors import Problem
from owp_bot.events import Subscription
from owp_bot.keys import HUB, SCHEDULER
from owp_bot.protocol.models import Answer
from owp_bot.protocol.routes import Api, Call
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.api import event_model
from owp_bot.scheduler.service import Scheduler
from owp_bot.scheduler.store import Event, compact_json

log = logging.getLogger(__name__)
stream_api = Api("dashboard")
STREAMS: web.AppKey[set[EventSourceResponse]] = web.AppKey("event_streams", set)
STREAM_TOKEN_TTL = 60.0  # seconds: long enough to open an EventSource, short enough not to matter in a log
PING_INTERVAL = 15.0
SEND_TIMEOUT = 10.0  # a client that does not take a frame within this is cut off
RETRY_MS = 2000
LOG_PAGE = 500
MAX_SEQ = 2**62  # past any event's number, within the databases' 64-bit integers

View = Callable[[Event], "dict[str, Any] | None"]

# What the public dashboard may show: these event families, and only these detail fields. Free text
# (worker notes, status messages, an admin's reason for a trust change) stays on the admin stream.
PUBLIC_FAMILIES = frozenset({"task", "lease", "offer", "worker", "repo"})
PUBLIC_DETAILS = frozenset({
    "worker_id", "lease_id", "offer_id", "status", "previous", "title", "key", "source", "estimate_points",
    "required_skills", "area", "priority", "min_trust", "expires_at", "name", "github_handle", "tier",
    "skills", "capacity_points", "max_concurrent_tasks", "trust_tier", "max_open_prs", "area_locks",
    "lease_ttl", "offer_ttl", "pr_url", "pr_number", "outcome",
})
CODED_REASONS = frozenset({"task", "lease", "offer"})  # their `reason` is a code (lease_expired, unclear_...)


def public_view(event: Event) -> dict[str, Any] | None:
    """The event as the public stream shows it, or None when the public may not see it at all."""
    family = event.type.partition(".")[0]
    if family not in PUBLIC_FAMILIES:
        return None
    wire = event_model(event).model_dump(mode="json")
    wire["details"] = {k: v for k, v in event.details.items()
                       if k in PUBLIC_DETAILS or (k == "reason" and family in CODED_REASONS)}
    return wire


def admin_view(event: Event) -> dict[str, Any]:
    return event_model(event).model_dump(mode="json")


# ------------------------------------------------------------------ short-lived stream tokens


def stream_token(admin_token: str, now: float) -> tuple[str, float]:
    """A token for `?token=` on the stream URL, so the long-lived admin token never appears in a URL."""
    expires = int(now + STREAM_TOKEN_TTL)
    return f"{expires}.{_sign(admin_token, expires)}", float(expires)


def check_stream_token(admin_token: str, token: str, now: float) -> bool:
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < now:
        return False
    return hmac.compare_digest(signature, _sign(admin_token, int(expires_text)))


def _sign(admin_token: str, expires: int) -> str:
    return hmac.new(admin_token.encode(), f"owp-stream:{expires}".encode(), hashlib.sha256).hexdigest()


class StreamToken(Answer):
    token: str = Field(description="pass as ?token= on GET /v1/events/stream")
    expires_at: datetime


@stream_api.route("POST", "/v1/events/stream-token", summary="A short-lived token for the admin event stream",
                  auth="admin", responses={201: StreamToken})
async def create_stream_token(call: Call) -> tuple[int, BaseModel]:
    """Browsers cannot set headers on an EventSource; this token (valid for a minute) goes in its URL instead
    of the admin token."""
    scheduler = call.request.app[SCHEDULER]
    token, expires = stream_token(scheduler.settings.admin_token, scheduler.now())
    call.headers["Cache-Control"] = "no-store"
    return 201, StreamToken(token=token, expires_at=to_datetime(expires))


# ------------------------------------------------------------------ the stream


class StreamQuery(BaseModel):
    model_config = {"extra": "forbid"}
    token: str | None = Field(None, max_length=200, description="a token from POST /v1/events/stream-token: "
                                                                "the admin stream")
    last_event_id: int | None = Field(None, ge=0, le=MAX_SEQ, description="resume after this sequence number "
                                                                         "(the Last-Event-ID header wins)")
    backlog: int = Field(0, ge=0, le=500, description="on a fresh start, first replay up to this many "
                                                      "recent events")


@stream_api.route("GET", "/v1/events/stream", summary="The event log as Server-Sent Events", auth="none",
                  query=StreamQuery, responses={200: None})
async def event_stream(call: Call) -> web.StreamResponse:
    """`text/event-stream`: each event is `id: <seq>`, `event: <type>`, `data: <AuditEvent JSON>`.
    Reconnect with `Last-Event-ID` (or `?last_event_id=`) to receive exactly what was missed. Without
    credentials the stream is public (fewer event types and fields; 401 when OWP_PUBLIC_DASHBOARD=false);
    with `X-Admin-Token` or `?token=` from POST /v1/events/stream-token it carries everything."""
    request, query = call.request, call.query
    scheduler = request.app[SCHEDULER]
    admin = _is_admin_stream(request, query, scheduler)
    after = _resume_point(request, query)
    view: View = admin_view if admin else public_view
    # subscribe before reading the log, so that nothing can fall between the two
    with request.app[HUB].subscribe() as subscription:
        newest = await scheduler.run(ops.last_event_seq, write=False)
        if after is None or after > newest:  # past the log: a new database (a fresh demo, a restored backup)
            after = max(0, newest - query.backlog)  # start again from it; `ready` tells the client where
        response = EventSourceResponse(headers={"X-Accel-Buffering": "no"},
                                       ping_interval=PING_INTERVAL, send_timeout=SEND_TIMEOUT)
        await response.prepare(request)
        streams = request.app[STREAMS]
        streams.add(response)
        try:
            await response.send(compact_json({"after": after, "admin": admin}), event="ready", id=str(after),
                                retry=RETRY_MS)
            await _pump(response, subscription, scheduler, after, view)
        except (ConnectionResetError, TimeoutError):
            pass  # the client left or stalled; it resumes from the log when it comes back
        except Exception:  # the answer has started: end the stream, the client resumes after its last id
            log.exception("event stream failed after seq %s", after)
        finally:
            streams.discard(response)
            response.stop_streaming()
    return response


def _is_admin_stream(request: web.Request, query: StreamQuery, scheduler: Scheduler) -> bool:
    settings = scheduler.settings
    header = request.headers.get("X-Admin-Token")
    if header is not None:
        if not scheduler.is_admin(header):
            raise Problem(401, "X-Admin-Token is not the admin token of this pool")
        return True
    if query.token is not None:
        if not check_stream_token(settings.admin_token, query.token, scheduler.now()):
            raise Problem(401, "the stream token is invalid or expired; get a new one with "
                               "POST /v1/events/stream-token")
        return True
    if not settings.public_dashboard:
        raise Problem(401, "this pool's dashboard is private; get a stream token with the admin token "
                           "(POST /v1/events/stream-token) and pass it as ?token=")
    return False


def _resume_point(request: web.Request, query: StreamQuery) -> int | None:
    header = request.headers.get("Last-Event-ID")
    if header is None or not header.strip():
        return query.last_event_id
    digits = header.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) > MAX_SEQ:
        raise Problem(400, f"Last-Event-ID {header!r} is not an event sequence number; reconnect without it")
    return int(digits)


async def _pump(response: EventSourceResponse, subscription: Subscription, scheduler: Scheduler, after: int,
                view: View) -> None:
    """Send the log after `after`, then live events; fill any gap in the live sequence from the log."""
    last = after

    async def send_through(until: int | None) -> None:
        nonlocal last
        async for event in _log_after(scheduler, last, until):
            await _send(response, event, view)
            last = event.seq

    await send_through(None)
    ended = asyncio.ensure_future(response.wait())
    try:
        while not subscription.overflowed:
            try:
                event = subscription.queue.get_nowait()
            except asyncio.QueueEmpty:
                getter = asyncio.ensure_future(subscription.queue.get())
                await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return  # the client left, or the server is closing the stream
                event = getter.result()
            if event.seq <= last:
                continue  # already sent from the log
            if event.seq > last + 1:
                await send_through(event.seq - 1)  # published out of order, or written by another process
            await _send(response, event, view)
            last = event.seq
    finally:
        ended.cancel()


async def _log_after(scheduler: Scheduler, after: int, until: int | None) -> AsyncIterator[Event]:
    while True:
        page = await scheduler.run(ops.list_events, after, None, None, None, None, None, None, LOG_PAGE, write=False)
        for event in page:
            if until is not None and event.seq > until:
                return
            yield event
            after = event.seq
        if len(page) < LOG_PAGE:
            return


async def _send(response: EventSourceResponse, event: Event, view: View) -> None:
    shown = view(event)
    if shown is not None:
        await response.send(compact_json(shown), id=str(event.seq), event=event.type)


async def close_streams(app: web.Application) -> None:
    """On shutdown: end every open stream so the server stops at once (browsers reconnect and resume)."""
    streams: set[EventSourceResponse] = app[STREAMS]
    for response in list(streams):
        response.stop_streaming()

