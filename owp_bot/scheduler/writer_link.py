"""The writer process and its front processes: how a front sends its writes (`owp serve --processes N`).

Either store takes one writer at a time (SQLite's lock; on PostgreSQL the writers' advisory lock, across
replicas), and on a small machine the writer's share of a lease is about half of its CPU; HTTP is the other half
(bench/RESULTS.md). With `--processes N`, N front processes answer HTTP on one listening socket and run reads on
connections of their own (SQLite read-only in WAL, or a PostgreSQL pool: each sees what was committed), and the
one writer process runs every write operation, in the same group commits as a single process does, its
statements no longer waiting behind HTTP on its event loop. Its background work (heartbeats written behind,
expiry, the GitHub outbox, insights, and on PostgreSQL listening for other replicas' commits) runs there too.

An operation travels by name: `Scheduler.run` makes it a `functools.partial` of a module-level function and plain
values, which pickle sends as the function's name with the values. Over one Unix socket per front, each message
a pickled tuple behind a 4-byte length:
- front to writer: `("write", id, operation, arrived, slow)` (the operation pickled on its own, so that one the
  writer cannot load is answered as an error); `("beats", {worker_id: beat})`, the heartbeats the front took in
  the last BEATS_EVERY seconds, buffered by the writer as if they had arrived there; `("stats", requests)`, the
  front's request counters (every few seconds), and `("metrics", id, requests)`, a scrape of GET /metrics: the
  writer answers with its domain metrics and the sum of every front's request counters (those of fronts that
  ended too), the same whichever front is scraped.
- writer to front: `("events", [Event])`, every batch the writer publishes, to every front, in order (the list
  pickled on its own, once for all fronts); then `("answer", id, ok, value)`, the operation's value or the
  exception it raised (pickled on its own: one a front cannot load fails that request, not its link). A front
  publishes the events in its own hub for its event streams, before the answer of the write that made them;
  with no stream open it does not even unpickle them (a stream that opens reads the log first, then takes the
  live events after it, and fills any gap from the log: web/stream.py).

A front says `("hello", code)` first, `code` a digest of the code it runs: a front started again after an upgrade
on disk would send operations the writer's code does not have, or with other arguments, so the writer refuses
it (`("refused", reason)`) and the front ends (fronts.py does not start it again).

Unpickling runs code, so only the pool's own processes may reach the socket: fronts.py puts it in a directory made
by `tempfile.mkdtemp`, which only the user running `owp serve` may enter.

Rows travel as dicts (`sqlite3.Row` and `asyncpg.Record` do not pickle). The settings, where they are an
operation's argument, travel as a reference (`_TheSettings`): each process loaded the same ones from the same
environment. Deeper inside an argument (a webhook delivery's changes) they travel by value, the same values. Every
message stays within pickle's C code. A write whose answer never came (the writer stopped) fails with
a 503 that says it may or may not have been applied.
"""

from __future__ import annotations

import asyncio
import copyreg
import functools
import hashlib
import itertools
import logging
import pickle
import sqlite3
import struct
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
from aiohttp import web

from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.keys import SCHEDULER
from owp_bot.observability import RequestStats, exposition
from owp_bot.scheduler.service import Beat
from owp_bot.scheduler.store import Event, MakeOp

log = logging.getLogger(__name__)
T = TypeVar("T")
_LENGTH = struct.Struct("!I")
# Bytes a front may leave unread (the writer's events, answers) before the writer drops it: a stopped front (SIGSTOP,
# a debugger) would otherwise make the writer keep every event it publishes. Minutes of the benchmark's load.
BACKLOG_LIMIT = 256 * 1024 * 1024
BEATS_EVERY = 0.05  # seconds a front gathers heartbeats before it sends them (WriterLink.heartbeat)


@functools.cache
def code_digest() -> str:
    """A digest of the package's Python and SQL files as they are on disk now (read once per process)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".sql") and path.is_file():  # not an editor's lock (.#x.py, a dangling link)
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _row(row: sqlite3.Row | asyncpg.Record) -> tuple[Any, ...]:
    return dict, (dict(zip(row.keys(), tuple(row), strict=True)),)


# rows travel as dicts: neither pickles
copyreg.pickle(sqlite3.Row, _row)
copyreg.pickle(asyncpg.Record, _row)


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 (only the pool's own processes reach the socket: fronts.py)


def _frame(message: tuple[Any, ...]) -> bytes:
    body = _dumps(message)
    return _LENGTH.pack(len(body)) + body


class _TheSettings:
    """Stands for the settings in an operation's arguments: each process loaded the same ones from the same
    environment. A class pickles as its name, so the operation stays within pickle's C code (a Pickler subclass
    with persistent_id would call back into Python for every object)."""


class _Operations:
    """Operations as they travel: Scheduler.run makes each a `functools.partial` of a module-level function and
    plain values, pickled with this process's settings, where they are an argument, as _TheSettings. (Replaced at
    any depth, by a Pickler's dispatch_table, an operation cost twice as much to send and load again.)"""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def dumps(self, make_op: MakeOp[Any]) -> bytes:
        if not isinstance(make_op, functools.partial):
            raise TypeError(f"an operation for the writer process is a functools.partial (Scheduler.run makes one), "
                            f"not {make_op!r}")
        settings = self.settings
        return _dumps((make_op.func, tuple(_TheSettings if a is settings else a for a in make_op.args),
                       {k: _TheSettings if v is settings else v for k, v in make_op.keywords.items()}))

    def loads(self, data: bytes) -> MakeOp[Any]:
        func, args, keywords = _loads(data)
        settings = self.settings
        return functools.partial(func, *(settings if a is _TheSettings else a for a in args),
                                 **{k: settings if v is _TheSettings else v for k, v in keywords.items()})


class _Channel(asyncio.Protocol):
    """One end of a Unix socket connection: frames out, gathered for one write per turn of the loop, and in."""

    def __init__(self, on_message: Callable[[_Channel, Any], None], on_lost: Callable[[_Channel], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()  # made by the loop's connection factory; sent from its thread
        self._out: list[bytes] = []
        self._in = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._on_lost(self)

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, message: tuple[Any, ...]) -> None:
        self.send_frame(_frame(message))

    def send_frame(self, frame: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self.flush)
        self._out.append(frame)

    def flush(self) -> None:
        out, self._out = self._out, []
        transport = self._transport
        if out and transport is not None and not transport.is_closing():
            transport.write(b"".join(out))
            if transport.get_write_buffer_size() > BACKLOG_LIMIT:  # the other end stopped reading
                log.error("the other end of the writer's socket has %d bytes unread: disconnected (a front starts "
                          "again)", transport.get_write_buffer_size())
                transport.abort()

    def data_received(self, data: bytes) -> None:
        self._in += data
        start, end = 0, len(self._in)
        while end - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._in, start)
            if end - start - _LENGTH.size < size:
                break
            body = bytes(self._in[start + _LENGTH.size:start + _LENGTH.size + size])
            start += _LENGTH.size + size
            self._on_message(self, _loads(body))
        del self._in[:start]

    def close(self) -> None:
        if self._transport is not None:
            self.flush()
            self._transport.close()


# ------------------------------------------------------------------ the writer's side


class WriterService:
    """In the writer process (`app`, the whole pool): runs the writes its fronts send, takes their heartbeats,
    sends them its events, and answers their scrapes of GET /metrics."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.scheduler = scheduler = app[SCHEDULER]
        self._operations = _Operations(scheduler.settings)
        self._fronts: set[_Channel] = set()
        self._requests: dict[_Channel, RequestStats] = {}  # each front's request counters, as it last sent them
        self._ended = RequestStats()  # those of fronts that ended
        self._writes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.connected = asyncio.Event()  # a front connected since it was last cleared (the supervisor waits)
        self.code = code_digest()
        scheduler.hub.forward(self._broadcast)

    async def start(self, path: Path) -> None:
        self._server = await asyncio.get_running_loop().create_unix_server(
            lambda: _Channel(self._message, self._gone), str(path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for channel in list(self._fronts):
            channel.close()
        if self._writes:  # the writes already asked are made (their fronts may be gone)
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def front_count(self) -> int:
        return len(self._fronts)

    def _gone(self, channel: _Channel) -> None:
        self._fronts.discard(channel)
        ended = self._requests.pop(channel, None)
        if ended is not None:  # the pool's counters keep what it counted: they never go down
            self._ended.add(ended)

    async def _metrics(self, channel: _Channel, ident: int) -> None:
        total = self._ended.snapshot()
        for requests in self._requests.values():
            total.add(requests)
        try:
            answer = self._answer(ident, True, await exposition(self.app, total))
        except Exception as exc:
            answer = self._answer(ident, False, self._portable(exc))
        if channel.open:
            channel.send_frame(answer)

    def _broadcast(self, events: list[Event]) -> None:
        if self._fronts:
            frame = _frame(("events", _dumps(events)))
            for channel in self._fronts:
                channel.send_frame(frame)

    def _message(self, channel: _Channel, message: Any) -> None:
        kind = message[0]
        if kind != "hello" and channel not in self._fronts:  # before its hello, or refused: a front sends its hello
            return  # and then, unanswered, the writes of its first requests, which may come in the same read
        if kind == "write":
            _, ident, operation, arrived, slow = message
            task = asyncio.get_running_loop().create_task(self._write(channel, ident, operation, arrived, slow))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        elif kind == "beats":
            for worker_id, beat in message[1].items():
                self.scheduler.buffer_heartbeat(worker_id, beat)
        elif kind == "stats":
            self._requests[channel] = message[1]
        elif kind == "metrics":
            _, ident, self._requests[channel] = message
            task = asyncio.get_running_loop().create_task(self._metrics(channel, ident))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        elif kind == "hello":
            if message[1] != self.code:
                log.error("a front process runs other code (%s) than this writer (%s): refused", message[1], self.code)
                channel.send(("refused", "the package's files changed on disk since `owp serve` started; restart it "
                                         "to run the new code"))
                channel.close()
                return
            self._fronts.add(channel)
            self.connected.set()
        else:
            log.error("a front process sent %r, which the writer does not know; ignored", kind)

    async def _write(self, channel: _Channel, ident: int, operation: bytes, arrived: float, slow: bool) -> None:
        try:
            make_op = self._operations.loads(operation)
            value = await self.scheduler.write(make_op, arrived, slow)
            answer = self._answer(ident, True, value)
        except Exception as exc:
            answer = self._answer(ident, False, self._portable(exc))
        if channel.open:
            channel.send_frame(answer)

    def _answer(self, ident: int, ok: bool, value: Any) -> bytes:
        """The answer's frame; its value pickled on its own, so that one the front cannot load fails one request."""
        return _frame(("answer", ident, ok, _dumps(value)))

    def _portable(self, exc: Exception) -> Exception:
        """The exception as the front will raise it: a copy of it where it pickles and loads again, with the writer's
        traceback. A copy: a group that failed as a whole (BEGIN, its prelude, COMMIT) gives each of its writes the
        same exception, and a note added to it each time would carry all the notes before it (twice the size each
        time). Loaded again here: one that pickles but does not load would end the front's link, not one request."""
        try:
            sent: Exception = _loads(_dumps(exc))
        except Exception:
            sent = RuntimeError(f"{type(exc).__name__} in the writer process: {exc}")
        if not isinstance(sent, Problem):
            sent.add_note("raised in the writer process:\n" + "".join(traceback.format_exception(exc)))
        return sent


# ------------------------------------------------------------------ a front's side


class WriterLink:
    """In a front process: the scheduler's `writer` (service.Writer), over the writer process's socket."""

    def __init__(self, path: Path, hub: EventHub, settings: Settings) -> None:
        self._path = path
        self._hub = hub
        self._operations = _Operations(settings)
        self._channel: _Channel | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self.code = code_digest()
        self.refused: str | None = None  # why the writer refused this front
        self.lost = asyncio.Event()  # the writer went away, or refused it: the front process ends
        self._beats: dict[str, Beat] = {}  # taken, not yet sent
        self._beats_due: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        def channel() -> _Channel:
            return _Channel(self._message, self._lost)

        self._loop = asyncio.get_running_loop()  # a heartbeat may be taken from its thread while it is not running
        _, self._channel = await self._loop.create_unix_connection(channel, str(self._path))
        self._channel.send(("hello", self.code))

    async def close(self) -> None:
        if self._channel is not None:
            self._send_beats()
            self._channel.close()

    async def write(self, make_op: MakeOp[T], arrived: float, slow: bool) -> T:
        operation = self._operations.dumps(make_op)  # first: one that does not pickle leaves nothing pending
        value: T = await self._ask(lambda ident: ("write", ident, operation, arrived, slow))
        return value

    async def metrics(self, requests: RequestStats) -> bytes:
        text: bytes = await self._ask(lambda ident: ("metrics", ident, requests))
        return text

    def stats(self, requests: RequestStats) -> None:
        if self._channel is not None and self._channel.open:
            self._channel.send(("stats", requests))

    async def _ask(self, message: Callable[[int], tuple[Any, ...]]) -> Any:
        channel = self._channel
        if channel is None or not channel.open:
            raise Problem(503, "the pool's writer process is not running; try again in a moment")
        ident = next(self._ids)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = answer
        if self._beats:  # a request never reaches the writer before the heartbeats this front took before it
            self._send_beats()
        channel.send(message(ident))
        return await answer

    def heartbeat(self, worker_id: str, beat: Beat) -> None:
        """Gathered for BEATS_EVERY seconds, then sent in one message, and before any request this front sends the
        writer: the worker's next request to this front never reaches the writer before its beat. One it sends at
        once to another front may, within BEATS_EVERY: that request is judged by the beat before, as by another
        replica on PostgreSQL, where each replica writes its heartbeats behind within a second. It matters only to
        a worker silent for OWP_HEARTBEAT_TIMEOUT until this beat (the writer's own sweeper, too, may lapse its
        work within those BEATS_EVERY seconds). A front that crashes loses at most those
        BEATS_EVERY seconds of last-seen times, never a lease. Sent at once, each beat cost a write of its own
        (heartbeats over two fronts grew 8% instead of 30%); sent each turn of the loop, a write every few beats
        (bench/RESULTS.md, twelfth and thirteenth sessions)."""
        channel = self._channel
        if channel is None or not channel.open:
            raise Problem(503, "the pool's writer process is not running; the heartbeat was not recorded: send it "
                               "again in a moment")
        self._beats[worker_id] = beat  # a worker's beats come in order here: the newest one counts
        if self._beats_due is None:
            assert self._loop is not None  # set by open(), as the channel is
            self._beats_due = self._loop.call_later(BEATS_EVERY, self._send_beats)

    def _send_beats(self) -> None:
        if self._beats_due is not None:
            self._beats_due.cancel()
            self._beats_due = None
        beats, self._beats = self._beats, {}
        if beats and self._channel is not None and self._channel.open:
            self._channel.send(("beats", beats))

    def _message(self, channel: _Channel, message: Any) -> None:
        if message[0] == "events":
            if self._hub.subscriber_count:
                self._hub.publish(_loads(message[1]))
            return
        if message[0] == "refused":
            self.refused = message[1]
            log.error("the writer process refused this front: %s", self.refused)
            return
        _, ident, ok, pickled = message
        answer = self._pending.pop(ident, None)
        if answer is None or answer.done():  # its caller went away; the write was made all the same
            return
        try:
            value = _loads(pickled)
        except Exception as exc:
            answer.set_exception(RuntimeError(f"the writer's answer could not be read here: {exc!r}"))
            return
        if ok:
            answer.set_result(value)
        else:
            answer.set_exception(value)

    def _lost(self, channel: _Channel) -> None:
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(Problem(
                    503, "the pool's writer process stopped before it answered: the request may or may not have "
                         "been applied; read the state (GET /v1/work, the task), then try again"))
        self.lost.set()
