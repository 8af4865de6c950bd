"""The audit trail: filters, CSV and JSON Lines exports streamed page by page, append-only events, retention
that prunes the oldest events as an event of its own, without changing anybody's reputation."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
import time
from typing import Any

import pytest

from owp_bot.config import Settings
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler.analytics import prune_events
from owp_bot.scheduler.api import EXPORT_PAGE
from owp_bot.scheduler.operations import emit
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.store import Op
from tests.conftest import ADMIN_TOKEN, Pool


def many_events(n: int, now: float) -> Op[None]:
    for i in range(n):
        yield emit(now, "test.note", "admin", f"target-{i % 7}", "acme/api" if i % 2 else None, index=i,
                   text='a "quoted", comma\nnewline')


async def export(pool: Pool, **kwargs: Any) -> tuple[Any, str]:
    headers = kwargs.pop("headers", {})
    response = await pool.http.get("/v1/audit/events", headers={"X-Admin-Token": ADMIN_TOKEN, **headers},
                                   **kwargs)
    assert response.status == 200, await response.text()
    return response, await response.text()


async def test_jsonl_export_streams_every_event_across_pages(pool: Pool) -> None:
    n = 2 * EXPORT_PAGE + 17
    await pool.app[SCHEDULER].run(many_events, n, NOW)
    response, text = await export(pool, params={"format": "jsonl", "type": "test.note"})
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response.headers.get("Transfer-Encoding") == "chunked"  # streamed, never built whole in memory
    assert "attachment" in response.headers["Content-Disposition"]
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["details"]["index"] for r in records] == list(range(n))
    assert all(a["seq"] < b["seq"] for a, b in itertools.pairwise(records))
    assert set(records[0]) == {"seq", "ts", "type", "actor", "target", "repo", "details"}


async def test_csv_export_by_accept_header_with_filters(pool: Pool) -> None:
    await pool.app[SCHEDULER].run(many_events, 30, NOW)
    response, text = await export(pool, headers={"Accept": "text/csv"},
                                  params={"repo": "acme/api", "target": "target-3"})
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["seq", "ts", "type", "actor", "target", "repo", "details"]
    indexes = [json.loads(r["details"])["index"] for r in rows]
    assert indexes == [i for i in range(30) if i % 2 and i % 7 == 3]
    assert json.loads(rows[0]["details"])["text"] == 'a "quoted", comma\nnewline'  # quoting round-trips


async def test_exports_honour_the_cursor_and_time_range(pool: Pool) -> None:
    await pool.app[SCHEDULER].run(many_events, 5, NOW)
    pool.clock.advance(3600)
    await pool.app[SCHEDULER].run(many_events, 5, NOW)
    everything = [json.loads(x) for x in (await export(pool, params={"format": "jsonl"}))[1].splitlines()]
    after = everything[2]["seq"]
    later = (await export(pool, params={"format": "jsonl", "after": after}))[1].splitlines()
    assert [json.loads(x)["seq"] for x in later] == [e["seq"] for e in everything[3:]]
    recent = (await export(pool, params={"format": "jsonl", "since": everything[-1]["ts"]}))[1].splitlines()
    assert len(recent) == 5
    page = await pool.call("GET", "/v1/audit/events", admin=True, params={"limit": 4, "type": "test.*"})
    assert len(page["events"]) == 4 and page["next_cursor"] == page["events"][-1]["seq"]


async def test_a_time_without_a_zone_is_utc_whatever_the_servers_zone(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        await pool.app[SCHEDULER].run(many_events, 2, NOW)  # 2026-01-01T00:00:00Z
        pool.clock.advance(3600)
        await pool.app[SCHEDULER].run(many_events, 3, NOW)  # 01:00Z
        page = await pool.call("GET", "/v1/audit/events", admin=True,
                               params={"type": "test.note", "since": "2026-01-01T01:00:00"})
        assert len(page["events"]) == 3
        page = await pool.call("GET", "/v1/audit/events", admin=True,
                               params={"type": "test.note", "until": "2026-01-01T01:00:00"})
        assert len(page["events"]) == 2
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_export_needs_the_admin_token_and_a_known_format(pool: Pool) -> None:
    _, token = await pool.worker()
    await pool.call("GET", "/v1/audit/events", token=token, params={"format": "csv"}, expect=401)
    await pool.call("GET", "/v1/audit/events", admin=True, params={"format": "xml"}, expect=422)


async def test_actions_are_events_with_actor_and_no_secrets(pool: Pool) -> None:
    await pool.repo()
    worker_id, token = await pool.worker()
    await pool.call("POST", f"/v1/workers/{worker_id}/trust-tier", admin=True,
                    json={"tier": "trusted", "reason": "maintainer vouches"})
    text = (await export(pool, params={"format": "jsonl"}))[1]
    actors = {json.loads(line)["type"]: json.loads(line)["actor"] for line in text.splitlines()}
    assert actors == {"repo.created": "admin", "worker.registered": worker_id, "worker.trust_tier": "admin"}
    assert token not in text and ADMIN_TOKEN not in text


@pytest.mark.sqlite_only
async def test_events_cannot_be_updated(pool: Pool, settings: Settings) -> None:
    await pool.repo()
    with sqlite3.connect(settings.db_path) as db, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET actor = 'someone else'")


async def test_retention_prunes_the_oldest_as_an_event_and_keeps_reputation(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    worker_id, token = await pool.worker()
    offer = (await pool.offers(token))["offers"][0]
    await pool.accept(token, offer["offer_id"])
    await pool.status(task, "pr_opened", token=token, artifact={"pr_url": "https://github.com/acme/api/pull/5"})
    await pool.status(task, "merged", admin=True)
    before = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    old = len(await pool.events())

    pool.clock.advance(40 * 86400)
    await pool.heartbeat(token)
    removed = await pool.app[SCHEDULER].run(prune_events, NOW, 30 * 86400)
    assert removed == old

    [pruned] = await pool.events(type="audit.pruned")
    assert (pruned["actor"], pruned["details"]["events_removed"]) == ("system", old)
    assert pruned["details"]["before"] == "2026-01-11T00:00:00Z"
    # only what happened after the cutoff is left (a background transaction may see the worker silent for
    # 40 days before its heartbeat lands: that worker.offline is new, and stays)
    remaining = await pool.events()
    assert all(e["ts"] >= pruned["details"]["before"] for e in remaining)
    assert [e["seq"] for e in remaining if e["type"] == "audit.pruned"] == [pruned["seq"]]
    after = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert after["reputation_score"] == before["reputation_score"] == 66.7
    assert after["metrics"] == before["metrics"]
    # a second run has nothing to prune and says nothing
    assert await pool.app[SCHEDULER].run(prune_events, NOW, 30 * 86400) == 0
    assert len(await pool.events(type="audit.pruned")) == 1
