"""Shared fixtures: settings on a real SQLite file, a manual clock, the app on a real 127.0.0.1 port,
and `Pool`, a small client of the protocol that reads like the steps a person takes."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from owp_bot.app import create_app
from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.fronts import writer

ADMIN_TOKEN = "test-admin-token-0123456789"


# The store/API tests run on both backends: `backend` is "sqlite" or "postgres" (a fresh schema per test on
# the PostgreSQL at OWP_TEST_DATABASE_URL, dropped afterwards). The API tests (those on the `pool` fixture) run
# twice more, as "split" and "split-postgres": the app under test is a front process's, and its writes go over a
# real Unix socket to a writer (`owp serve --processes N`, writer_link.py) that runs in the test's process. Mark a
# test `sqlite_only` when it opens the SQLite file itself; OWP_TEST_BACKENDS=sqlite narrows a local run.
TEST_DATABASE_URL = os.environ.get("OWP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = os.environ.get("OWP_TEST_BACKENDS", "sqlite,postgres,split,split-postgres").split(",")


def on_postgres(backend: str) -> bool:
    return backend in {"postgres", "split-postgres"}


def split(backend: str) -> bool:
    return backend.startswith("split")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test reads the SQLite file itself; SQLite only")
    config.addinivalue_line("markers", "one_process: the test writes through the app's store itself; not split")
    threading.Thread(target=_watch_for_hangs, name="owp-test-watchdog", daemon=True).start()


_phase: list[Any] = [None, 0.0]  # the test phase running now, and since when
HANG_REPORT_AFTER = float(os.environ.get("OWP_TEST_HANG_REPORT", "200"))  # s; pytest-timeout fails at 300


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    _phase[:] = [item.nodeid, time.monotonic()]
    try:
        return (yield)
    finally:
        _phase[:] = [None, 0.0]


def _watch_for_hangs() -> None:
    """A test stuck for minutes is a bug to find: print every pending asyncio task's stack (pytest-timeout
    shows only the threads, and an asyncio hang is a task waiting for something that never comes)."""
    reported = None
    while True:
        time.sleep(5)
        nodeid, since = _phase
        if nodeid is None or nodeid == reported or time.monotonic() - since < HANG_REPORT_AFTER:
            continue
        reported = nodeid
        print(f"\n=== {nodeid} has run for {HANG_REPORT_AFTER:.0f}s; pending asyncio tasks:", file=sys.__stderr__)
        for task in list(asyncio.tasks._all_tasks):  # type: ignore[attr-defined]  # all loops' tasks
            if not task.done():
                task.print_stack(file=sys.__stderr__)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        one_process = metafunc.definition.get_closest_marker("one_process") is not None
        backends = [b for b in BACKENDS if not split(b) or ("pool" in metafunc.fixturenames and not one_process)]
        metafunc.parametrize("backend", [b for b in backends if not on_postgres(b)] if sqlite_only else backends)


def postgres_schema_url() -> tuple[str, Callable[[], None]]:
    """A new, empty schema for one test: its URL and the function that drops it."""
    from tests.postgres_schema import drop_schema, new_schema

    schema = new_schema(TEST_DATABASE_URL)
    sep = "&" if "?" in TEST_DATABASE_URL else "?"
    # the connections are named after the schema, so that dropping it can end any left open
    url = f"{TEST_DATABASE_URL}{sep}search_path={schema}&application_name={schema}"
    return url, lambda: drop_schema(TEST_DATABASE_URL, schema)


@pytest.fixture
def settings(tmp_path: Path, backend: str) -> Iterator[Settings]:
    # heartbeats are written behind as in production (within a fraction of a second); the sweep proper waits
    # for the tests, which move the manual clock and read (every transaction lapses what is due first)
    base = Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db", sweep_interval=3600,
                    heartbeat_flush_interval=0.2)
    if not on_postgres(backend):
        yield base
        return
    url, drop = postgres_schema_url()
    yield base.with_overrides(database_url=url)
    drop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema's URL, for PostgreSQL-only tests."""
    url, drop = postgres_schema_url()
    yield url
    drop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class Pool:
    """The protocol from a test's point of view: every call is a real HTTP request."""

    def __init__(self, client: TestClient[web.Request, web.Application], clock: ManualClock) -> None:
        self.http = client
        self.clock = clock
        self.admin = {"X-Admin-Token": ADMIN_TOKEN}

    @property
    def app(self) -> web.Application:
        return self.http.server.app  # type: ignore[return-value]

    async def call(self, method: str, path: str, *, token: str | None = None, admin: bool = False,
                   expect: int | None = 200, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if admin:
            headers.update(self.admin)
        response = await self.http.request(method, path, headers=headers, **kwargs)
        body = await response.json(content_type=None) if response.content_length != 0 else None
        if expect is not None:
            assert response.status == expect, f"{method} {path} -> {response.status}: {body}"
        return body

    async def repo(self, name: str = "acme/api", max_open_prs: int = 3, **settings: Any) -> Any:
        return await self.call("PUT", f"/v1/repos/{name}", admin=True, expect=None,
                               json={"max_open_prs": max_open_prs, **settings})

    async def task(self, title: str = "a task", repo: str = "acme/api", **fields: Any) -> str:
        body = await self.call("POST", "/v1/tasks", admin=True, expect=None,
                               json={"repo": repo, "title": title, **fields})
        assert "task" in body, body
        return str(body["task"]["task_id"])

    async def crowd(self, priority: str = "critical") -> None:
        """More tasks nobody may take than ready_candidate's first way looks at (512), in a repo with a review budget
        of 0, queued ahead of the tasks a test adds after them at `priority` or below: those are then found the
        second way (sql/*/core.sql)."""
        document = "\n".join([
            "repos: {acme/paused: {max_open_prs: 0}}",
            f"defaults: {{repo: acme/paused, priority: {priority}}}",
            "tasks:", *(f"  - {{key: crowd-{i}, title: waits}}" for i in range(530))])
        report = await self.call("POST", "/v1/tasks/import", admin=True, data=document.encode(),
                                 headers={"Content-Type": "application/yaml"})
        assert report["created"] == 530, report

    async def worker(self, name: str = "ann", skills: list[str] | None = None, capacity_points: int = 5,
                     max_concurrent_tasks: int = 2, **fields: Any) -> tuple[str, str]:
        body = await self.call("POST", "/v1/workers/register", expect=201, json={
            "name": name, "skills": skills if skills is not None else ["python"],
            "capacity_points": capacity_points, "max_concurrent_tasks": max_concurrent_tasks, **fields})
        return body["worker_id"], body["token"]

    async def offers(self, token: str) -> Any:
        return await self.call("POST", "/v1/work/offers", token=token)

    async def accept(self, token: str, offer_id: str, expect: int = 201) -> Any:
        return await self.call("POST", f"/v1/work/offers/{offer_id}/accept", token=token, expect=expect)

    async def reject(self, token: str, offer_id: str, reason: str = "insufficient_time", expect: int = 200) -> Any:
        return await self.call("POST", f"/v1/work/offers/{offer_id}/reject", token=token, expect=expect,
                               json={"reason": reason})

    async def work(self, token: str) -> Any:
        return await self.call("GET", "/v1/work", token=token)

    async def status(self, task_id: str, status: str, *, token: str | None = None, admin: bool = False,
                     expect: int = 200, **body: Any) -> Any:
        return await self.call("POST", f"/v1/tasks/{task_id}/status", token=token, admin=admin, expect=expect,
                               json={"status": status, **body})

    async def heartbeat(self, token: str, status: str = "idle") -> Any:
        return await self.call("POST", "/v1/workers/heartbeat", token=token, json={"status": status})

    async def get_task(self, task_id: str) -> Any:
        return await self.call("GET", f"/v1/tasks/{task_id}", admin=True)

    async def events(self, **query: Any) -> list[Any]:
        found: list[Any] = []
        after = 0
        while True:
            page = await self.call("GET", "/v1/audit/events", admin=True, params={**query, "after": after,
                                                                                   "limit": 1000})
            found += page["events"]
            if page["next_cursor"] is None:
                return found
            after = page["next_cursor"]


@pytest.fixture
async def pool(settings: Settings, clock: ManualClock, aiohttp_client: Any,
               request: pytest.FixtureRequest) -> AsyncIterator[Pool]:
    # (tests/webhooks run on SQLite alone unless they take `backend`)
    if "backend" not in request.fixturenames or not split(request.getfixturevalue("backend")):
        yield Pool(await aiohttp_client(create_app(settings, clock=clock)), clock)
        return
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:  # short: a Unix socket's path has 107 bytes
        path = Path(directory) / "writer.sock"
        async with writer(create_app(settings, clock=clock), path):
            client = await aiohttp_client(create_app(settings, clock=clock, writer_socket=path))
            try:
                yield Pool(client, clock)
            finally:
                await client.close()


async def start_server(settings: Settings, clock: ManualClock | None = None) -> TestServer:
    """A server on a real port that a test can stop and start again (restart tests)."""
    server = TestServer(create_app(settings, clock=clock), host="127.0.0.1")
    await server.start_server()
    return server
