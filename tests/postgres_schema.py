"""Throwaway PostgreSQL schemas for tests: one per test (or per multi-replica run), dropped afterwards.

Synchronous on purpose (a private event loop on a helper thread), so that plain fixtures can use it. The
first call of a test process also drops schemas left behind by test processes that no longer run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg

T = TypeVar("T")
_PREFIX = "owp_t"
_NAME = re.compile(rf"^{_PREFIX}(\d+)_\d+_[0-9a-f]+$")
_counter = itertools.count(1)
_swept = False


def _on_thread(make: Callable[[asyncpg.Connection], Awaitable[T]], url: str) -> T:
    async def go() -> T:
        conn = await asyncpg.connect(url)
        try:
            return await make(conn)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, go()).result()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_schema(url: str) -> str:
    global _swept
    name = f"{_PREFIX}{os.getpid()}_{next(_counter)}_{secrets.token_hex(3)}"

    async def create(conn: asyncpg.Connection) -> None:
        if not _swept:
            for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'owp\\_t%'"):
                match = _NAME.match(row["nspname"])
                if match and not _alive(int(match.group(1))):
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
        await conn.execute(f'CREATE SCHEMA "{name}"')  # the name is ours: prefix, digits and hex only

    _on_thread(create, url)
    _swept = True
    return name


def drop_schema(url: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a test schema")

    async def drop(conn: asyncpg.Connection) -> None:
        # a connection the test left open (a killed replica's, say) must not hold the DROP up
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE application_name = $1 AND pid <> pg_backend_pid()", name)
        await conn.execute("SET lock_timeout = '60s'")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    _on_thread(drop, url)
