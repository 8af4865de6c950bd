"""Background work tied to a lifetime: started on entry, cancelled and awaited on exit, never fire-and-forget."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

log = logging.getLogger(__name__)
RECANCEL_EVERY = 0.5  # seconds


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        # Cancel until it ends: a cancellation can be lost (on Python 3.11 asyncio.wait_for drops one that
        # arrives as its awaitable completes), and a loop that lost it would keep the app from stopping.
        task.cancel()
        while not (await asyncio.wait({task}, timeout=RECANCEL_EVERY))[0]:
            log.warning("%s did not stop when cancelled; cancelling it again", name)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
