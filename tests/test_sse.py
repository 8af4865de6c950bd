"""The event stream on the wire: exact SSE frames, Last-Event-ID resume without gaps or duplicates, the
public/admin split, dropping a client that falls behind; and how the dashboard shell is served."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from owp_bot.keys import HUB, SCHEDULER, STORE
from owp_bot.scheduler.operations import emit
from owp_bot.scheduler.store import Event, Op
from owp_bot.web import pages
from owp_bot.web.stream import STREAM_TOKEN_TTL, STREAMS, close_streams
from tests.conftest import ADMIN_TOKEN, Pool

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


class Frames:
    """Reads an open text/event-stream response one frame at a time (pings are comment frames)."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def raw(self) -> str:
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), 5)
            if not line:
                raise EOFError("the server ended the stream")
            text = line.decode()
            if text == "\r\n":
                return "".join(lines)
            lines.append(text)

    async def next(self) -> dict[str, Any]:
        """The next event frame as {id, event, data}, skipping pings."""
        while True:
            frame = await self.raw()
            if frame.startswith(":"):
                continue
            fields = dict(line.split(": ", 1) for line in frame.split("\r\n") if line)
            return {"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])}

    async def events(self, count: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(count)]


async def open_stream(pool: Pool, *, headers: dict[str, str] | None = None, expect: int = 200,
                      **params: Any) -> Frames:
    response = await pool.http.get("/v1/events/stream", headers=headers or {}, params=params)
    assert response.status == expect, await response.text()
    return Frames(response)


async def busy_pool(pool: Pool) -> tuple[str, str, str]:
    """repo.created, task.created, worker.registered, offer.created (seq 1..4) -> task, token, offer."""
    await pool.repo("acme/api", max_open_prs=2)
    task_id = await pool.task("Fix the login page", area="auth")
    _, token = await pool.worker()
    offer_id = (await pool.offers(token))["offers"][0]["offer_id"]
    return task_id, token, offer_id


def written_elsewhere(now: float) -> Op[None]:
    """An event that reaches the log without passing this process's hub (another replica wrote it)."""
    yield emit(now, "github.delivery_failed", "system", None, None, delivery_id="d1", error="bad signature")


async def test_frames_are_exact_and_start_with_a_ready_frame(pool: Pool) -> None:
    await pool.repo("acme/api", max_open_prs=2)
    stream = await open_stream(pool, headers=ADMIN, last_event_id=0)
    assert stream.response.headers["Content-Type"] == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-cache"
    assert await stream.raw() == 'id: 0\r\nevent: ready\r\ndata: {"after":0,"admin":true}\r\nretry: 2000\r\n'
    frame = await stream.raw()
    event = (await pool.events())[0]
    assert frame == f"id: 1\r\nevent: repo.created\r\ndata: {json.dumps(event, separators=(',', ':'))}\r\n"
    assert event["seq"] == 1 and event["target"] == "acme/api"
    stream.response.close()


async def test_resume_with_last_event_id_misses_nothing_and_repeats_nothing(pool: Pool) -> None:
    task_id, token, offer_id = await busy_pool(pool)
    stream = await open_stream(pool, headers=ADMIN, last_event_id=0)
    await stream.next()  # ready
    seen = [int(f["id"]) for f in await stream.events(2)]
    stream.response.close()  # the connection drops after seq 2

    await pool.accept(token, offer_id)  # while disconnected: more events happen
    await pool.heartbeat(token, "working")
    await pool.work(token)  # flushes the heartbeat: worker.status
    stream = await open_stream(pool, headers={**ADMIN, "Last-Event-ID": str(seen[-1])})
    ready = await stream.next()
    assert ready["event"] == "ready" and ready["data"]["after"] == 2
    missed = await stream.events(len(await pool.events()) - 2)
    await pool.status(task_id, "in_progress", token=token)  # live, after the backlog
    live = await stream.next()
    seqs = seen + [int(f["id"]) for f in missed] + [int(live["id"])]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e["seq"] for e in await pool.events()] == seqs
    assert live["event"] == "task.in_progress" and live["data"]["seq"] == int(live["id"])
    stream.response.close()


async def test_fresh_stream_starts_now_or_with_a_backlog(pool: Pool) -> None:
    await busy_pool(pool)
    now = await open_stream(pool)
    assert (await now.next())["data"] == {"after": 4, "admin": False}
    recent = await open_stream(pool, backlog=2)
    assert (await recent.next())["data"]["after"] == 2
    assert [f["id"] for f in await recent.events(2)] == ["3", "4"]
    await pool.repo("acme/web")
    assert (await now.next())["event"] == (await recent.next())["event"] == "repo.created"
    now.response.close()
    recent.response.close()


@pytest.mark.one_process  # writes an event the hub never sees, as another replica would
async def test_public_stream_shows_only_public_families(pool: Pool) -> None:
    await busy_pool(pool)
    public = await open_stream(pool, last_event_id=4)
    admin = await open_stream(pool, headers=ADMIN, last_event_id=4)
    await public.next(), await admin.next()
    await pool.app[STORE].run(lambda: written_elsewhere(pool.clock.now()))  # seq 5, never published here
    await pool.repo("acme/web")  # seq 6: the streams see a gap and fill it from the log
    assert [f["event"] for f in await admin.events(2)] == ["github.delivery_failed", "repo.created"]
    assert [(f["id"], f["event"]) for f in await public.events(1)] == [("6", "repo.created")]
    public.response.close()
    admin.response.close()


async def test_public_stream_drops_free_text_notes(pool: Pool) -> None:
    _, token = await pool.worker()
    public = await open_stream(pool, last_event_id=1)
    admin = await open_stream(pool, headers=ADMIN, last_event_id=1)
    await public.next(), await admin.next()
    await pool.call("POST", "/v1/workers/heartbeat", token=token,
                    json={"status": "paused", "note": "at the dentist, call +1 555 0100"})
    await pool.repo("acme/api")  # a transaction flushes the buffered heartbeat
    assert (await admin.next())["data"]["details"]["note"] == "at the dentist, call +1 555 0100"
    assert (await public.next())["data"]["details"] == {"status": "paused", "previous": "idle"}
    assert (await admin.next())["event"] == (await public.next())["event"] == "repo.created"
    worker_id = (await pool.call("GET", "/v1/workers"))["workers"][0]["worker_id"]
    await pool.call("POST", f"/v1/workers/{worker_id}/trust-tier", admin=True,
                    json={"tier": "trusted", "reason": "vouched for by Jo on the phone"})
    assert (await admin.next())["data"]["details"]["reason"] == "vouched for by Jo on the phone"
    assert (await public.next())["data"]["details"] == {"worker_id": worker_id, "tier": "trusted",
                                                         "previous": "basic"}
    public.response.close()
    admin.response.close()


async def test_private_pool_needs_the_admin_or_a_fresh_stream_token(pool: Pool, monkeypatch: Any) -> None:
    scheduler = pool.app[SCHEDULER]
    monkeypatch.setattr(scheduler, "settings", scheduler.settings.with_overrides(public_dashboard=False))
    problem = await (await pool.http.get("/v1/events/stream")).json()
    assert problem["status"] == 401 and "POST /v1/events/stream-token" in problem["detail"]

    issued = await pool.call("POST", "/v1/events/stream-token", admin=True, expect=201)
    stream = await open_stream(pool, token=issued["token"])
    assert (await stream.next())["data"]["admin"] is True
    stream.response.close()

    pool.clock.advance(STREAM_TOKEN_TTL + 1)
    await open_stream(pool, token=issued["token"], expect=401)
    await open_stream(pool, token=issued["token"].replace(".", ".0"), expect=401)
    await open_stream(pool, headers={"X-Admin-Token": "not-the-admin-token-at-all"}, expect=401)
    await pool.call("POST", "/v1/events/stream-token", expect=401)


async def test_a_last_event_id_past_the_log_starts_again_from_the_log(pool: Pool) -> None:
    """A new database behind the same address (a fresh `owp demo`, a restored backup) numbers its events from
    1 again: a client resuming after its old, higher id must get them, not wait until seq passes that id."""
    await busy_pool(pool)  # seq 1..4
    stream = await open_stream(pool, headers={**ADMIN, "Last-Event-ID": "5000"})
    ready = await stream.next()
    assert ready["event"] == "ready" and ready["data"]["after"] == 4 and ready["id"] == "4"
    await pool.repo("acme/web")  # seq 5
    assert [(f["id"], f["event"]) for f in await stream.events(1)] == [("5", "repo.created")]
    stream.response.close()
    backlog = await open_stream(pool, last_event_id=5000, backlog=2)
    assert (await backlog.next())["data"]["after"] == 3
    assert [f["id"] for f in await backlog.events(2)] == ["4", "5"]
    backlog.response.close()


async def test_bad_last_event_id_is_a_clear_400(pool: Pool) -> None:
    response = await pool.http.get("/v1/events/stream", headers={"Last-Event-ID": "yesterday"})
    assert response.status == 400
    assert "not an event sequence number" in (await response.json())["detail"]


async def test_a_last_event_id_no_sequence_can_reach_is_a_clear_400(pool: Pool) -> None:
    """Digits Python reads but no number is (a superscript two), and numbers past the log's range: a 400, not a
    500, nor a stream that starts and fails at once (its client would come back with the same id for ever)."""
    for value in ["\u00b2", str(2**63), "9" * 30]:
        response = await pool.http.get("/v1/events/stream", headers={"Last-Event-ID": value})
        assert response.status == 400, value
        assert "not an event sequence number" in (await response.json())["detail"]


async def test_a_client_that_falls_behind_is_dropped_and_resumes_from_the_log(pool: Pool) -> None:
    await busy_pool(pool)
    hub = pool.app[HUB]
    others = hub.subscriber_count  # other subsystems (the GitHub outbox) listen too
    stream = await open_stream(pool, headers=ADMIN, last_event_id=4)
    await stream.next()
    assert hub.subscriber_count == others + 1
    flood = [Event(seq=100 + i, ts=0, type="test.noise", actor="system", target=None, repo=None, details={})
             for i in range(1001)]  # more than the per-subscriber queue holds, without yielding
    hub.publish(flood)
    with pytest.raises(EOFError):
        while True:
            await stream.next()
    await pool.repo("acme/web")
    resumed = await open_stream(pool, headers={**ADMIN, "Last-Event-ID": "4"})
    await resumed.next()
    assert [f["event"] for f in await resumed.events(1)] == ["repo.created"]
    resumed.response.close()


async def test_shutdown_ends_open_streams(pool: Pool) -> None:
    stream = await open_stream(pool)
    await stream.next()
    assert len(pool.app[STREAMS]) == 1
    await close_streams(pool.app)
    with pytest.raises(EOFError):
        await stream.next()


async def test_shell_is_never_cached_and_assets_are_immutable(pool: Pool, tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    monkeypatch.setattr(pages, "STATIC_DIR", tmp_path)
    missing = await pool.http.get("/")
    assert missing.status == 503 and "scripts/build-frontends.sh" in (await missing.json())["detail"]
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>OWP</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    for path in ("/", "/dashboard", "/dashboard/tasks"):
        page = await pool.http.get(path)
        assert page.status == 200 and page.headers["Cache-Control"] == "no-cache"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert await page.text() == "<!doctype html><title>OWP</title>"
    script = await pool.http.get("/assets/index-abc123.js")
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert script.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    for bad in ("/assets/..%2Findex.html", "/assets/nope.js"):
        assert (await pool.http.get(bad)).status == 404
    info = await pool.call("GET", "/v1/dashboard")
    assert info["public_dashboard"] is True and info["demo_mode"] is False
