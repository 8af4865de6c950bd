"""In-process fan-out of committed events to subscribers (the SSE stream, the demo's progress view).

Publishing never blocks the scheduler: each subscriber has a bounded queue, and one that falls behind is
dropped (marked `overflowed`) — it reconnects and resumes from the log by sequence number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

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
        self._forwards: list[Callable[[list[Event]], None]] = []

    def forward(self, send: Callable[[list[Event]], None]) -> None:
        """Also hand every published batch to `send` (the writer process sends them to its fronts)."""
        self._forwards.append(send)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self, self._queue_size)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, events: Iterable[Event]) -> None:
        if self._forwards:
            events = list(events)
            for send in self._forwards if events else ():
                send(events)
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


class SequencedHub(EventHub):
    """An EventHub that publishes every committed event once, in seq order, whichever replica wrote it.

    On PostgreSQL, events reach it from this replica's transactions (the store publishes a group's events once it
    is committed, and the scheduler again, dropped here) and from the log, read by the bridge when another
    replica's commit is notified; whatever is not above `last_seq` was published already and is dropped. Order
    holds because both paths hand it runs that begin right after `last_seq`: the bridge reads the log from there
    (not while this replica's own commit is being published), and the store first publishes what other replicas
    committed before its own events (read from the log) when the bridge is behind. In a front
    process (writer_link.py) they come from the writer process, in the order it published them.
    """

    def publish(self, events: Iterable[Event]) -> None:
        super().publish([event for event in events if event.seq > self.last_seq])
