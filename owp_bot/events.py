"""In-process fan-out of committed events to subscribers (the SSE stream, the demo's progress view).

Publishing never blocks the scheduler: each subscriber has a bounded queue, and one that falls behind is
dropped (marked `overflowed`) — it reconnects and resumes from the log by sequence number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from owp_bot.scheduler.store import Event


class Subscription:
    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def close(self) -> None:
        self._hub._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self.last_seq = 0

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.last_seq = max(self.last_seq, event.seq)
            for subscription in list(self._subscribers):
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscription.overflowed = True
                    subscription.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
