"""Background housekeeping: flush buffered heartbeats every second, lapse what is due every sweep interval.

Correctness never depends on it (every transaction lapses what is due first); it keeps the log and the
dashboard current when nobody is calling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from owp_bot.background import running
from owp_bot.keys import SCHEDULER

log = logging.getLogger(__name__)


async def _loop(app: web.Application) -> None:
    scheduler = app[SCHEDULER]
    settings = scheduler.settings
    since_sweep = 0.0
    while True:
        await asyncio.sleep(settings.heartbeat_flush_interval)
        since_sweep += settings.heartbeat_flush_interval
        if scheduler.pending_heartbeats == 0 and since_sweep < settings.sweep_interval:
            continue
        since_sweep = 0.0
        try:
            await scheduler.flush()
        except Exception:
            log.exception("sweep failed; retrying at the next interval")


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    async with running(_loop(app), "owp-sweeper"):
        yield
    with contextlib.suppress(Exception):
        await app[SCHEDULER].flush()  # last heartbeats before the database closes
