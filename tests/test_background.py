"""Background work ends with its lifetime, even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio

from owp_bot.background import running


async def test_work_that_loses_a_cancellation_is_cancelled_again() -> None:
    """On Python 3.11 asyncio.wait_for can drop a cancellation that arrives as its awaitable completes; the
    outbox loop then waited an hour (its poll) and the app never stopped. Here the loss is made on purpose."""
    lost = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            lost.set()  # swallowed
        await asyncio.Event().wait()

    async with running(stubborn(), "stubborn") as task:
        await asyncio.sleep(0)
    assert lost.is_set() and task.cancelled()


async def test_work_that_stops_at_once_is_awaited() -> None:
    async def quick() -> None:
        await asyncio.sleep(3600)

    async with running(quick(), "quick") as task:
        await asyncio.sleep(0)
    assert task.cancelled()
