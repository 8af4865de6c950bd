"""A minimal keep-alive HTTP/1.1 client: `hammer` (like `wrk -cN`) for the ceiling and heartbeat phases, and
`Pool`, the worker loop's connections.

The aiohttp client costs more CPU per request than an aiohttp server spends answering a bare route, so on a
small box it would measure itself, and take the server's second core. This one sends request bytes on N
keep-alive connections and only parses the status line and Content-Length of each answer (the pool's answers
always carry one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
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


class Exchange(asyncio.Protocol):
    """One keep-alive connection of a Pool: one request at a time, answered as (status, body)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None and self.answer is None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self.answer
        except asyncio.CancelledError:  # its answer may still come: the connection carries no other
            self.lost = True
            self.transport.close()
            raise
        finally:
            self.answer = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buffer[:head_end]).lower()
        total = head_end + 4 + _content_length(head)
        if len(self.buffer) < total:
            return
        answer = (int(head[9:12]), bytes(self.buffer[head_end + 4 : total]))
        del self.buffer[:total]
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError(f"the server closed the connection: {exc}"))


class Pool:
    """At most `size` keep-alive connections to host:port, each lent to one request at a time."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.address = host, port, f"{host}:{port}"
        self.idle: asyncio.Queue[Exchange | None] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # a connection not opened yet
        self.open: list[Exchange] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Exchange]:
        exchange = await self.idle.get()
        try:
            if exchange is None or exchange.lost:
                _, exchange = await asyncio.get_running_loop().create_connection(Exchange, self.host, self.port)
                self.open.append(exchange)
            yield exchange
        finally:
            self.idle.put_nowait(exchange)

    def close(self) -> None:
        for exchange in self.open:
            if exchange.transport is not None:
                exchange.transport.close()
