"""A minimal keep-alive HTTP/1.1 load generator (like `wrk -cN`), for the ceiling and heartbeat phases.

The aiohttp client costs more CPU per request than an aiohttp server spends answering a bare route, so on a
small box it would measure itself. This one sends prebuilt request bytes on N connections and only parses the
status line and Content-Length of each answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.statuses.values())


def request_bytes(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Connection(asyncio.Protocol):
    def __init__(
        self, requests: list[bytes], tally: Tally, deadline: float, closed: asyncio.Future[None]
    ) -> None:
        self.requests, self.tally, self.deadline, self.closed = requests, tally, deadline, closed
        self.buffer = bytearray()
        self.index = 0
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests[self.index % len(self.requests)])
        self.index += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            total = head_end + 4 + _content_length(head)
            if len(self.buffer) < total:
                return
            status = int(head[9:12])
            del self.buffer[:total]
            self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
            self.tally.latencies.append(time.perf_counter() - self.sent_at)
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _content_length(head: bytes) -> int:
    start = head.find(b"content-length:")
    if start < 0:
        return 0
    end = head.find(b"\r\n", start)
    return int(head[start + 15 : end if end >= 0 else None])


async def hammer(
    host: str, port: int, per_connection: list[list[bytes]], seconds: float
) -> tuple[Tally, float]:
    """Each connection cycles through its own requests, one in flight at a time, for `seconds`."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    closed: list[asyncio.Future[None]] = []
    for requests in per_connection:
        done: asyncio.Future[None] = loop.create_future()
        closed.append(done)
        await loop.create_connection(
            lambda r=requests, d=done: _Connection(r, tally, deadline, d), host, port
        )
    await asyncio.wait_for(asyncio.gather(*closed), seconds + 30)
    return tally, time.perf_counter() - started
