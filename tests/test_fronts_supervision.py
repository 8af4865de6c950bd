"""`owp serve --processes N` when no front is left to answer HTTP (fronts.py), without processes."""

from __future__ import annotations

import asyncio

from owp_bot.fronts import _until_stopped


async def test_serve_stops_when_every_front_was_refused() -> None:
    """Each front refused (the package changed on disk) and not started again: nothing accepts the listening socket's
    connections, so `owp serve` must not wait for a SIGTERM that may never come."""
    stop = asyncio.Event()

    async def refused() -> None:  # _Front.keep_running returns when its front exits with EXIT_OTHER_CODE
        await asyncio.sleep(0.01)

    kept = [asyncio.create_task(refused()) for _ in range(2)]
    assert await asyncio.wait_for(_until_stopped(stop, kept), 2) is False


async def test_serve_runs_until_stopped_while_a_front_is_left() -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(asyncio.sleep(60))
    kept = [asyncio.create_task(asyncio.sleep(0)), running]
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await asyncio.wait_for(_until_stopped(stop, kept), 2) is True
    assert not running.done()  # the fronts are stopped after, in order, not cancelled here
    running.cancel()
