"""The scheduler service: authenticates callers, buffers heartbeats, runs operations, publishes events.

Handlers call these coroutines; each runs one operation (operations.py) in one store transaction, which first
applies buffered heartbeats and lapses whatever ran out — so correctness never waits for the sweeper.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from owp_bot.clock import Clock
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.ids import new_id
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.store import Committed, MakeOp, Op, Store

if TYPE_CHECKING:
    from owp_bot.observability import RequestStats

T = TypeVar("T")
Beat = tuple[float, str, str | None]  # a heartbeat: when, the worker's status, its note
TOKEN_PREFIX = "owp_"  # noqa: S105 - a prefix, not a secret
ALIVE_EVERY = 10.0  # seconds: how often a writing process notes the pool alive (ops.resume)


class _Now:
    """Stands for the time an operation was asked, among the arguments of `Scheduler.run`."""

    def __repr__(self) -> str:
        return "NOW"

    def __reduce__(self) -> str:
        return "NOW"  # one object, also when pickled


NOW = _Now()


class Writer(Protocol):
    """Where a process that does not write sends its writes and heartbeats, and asks for the pool's metrics
    (writer_link.WriterLink)."""

    async def write(self, make_op: MakeOp[T], arrived: float, slow: bool) -> T: ...

    def heartbeat(self, worker_id: str, beat: Beat) -> None: ...

    async def metrics(self, requests: RequestStats) -> bytes: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Scheduler:
    def __init__(self, store: Store, settings: Settings, clock: Clock, hub: EventHub,
                 writer: Writer | None = None) -> None:
        self.store = store
        self.writer = writer
        self.settings = settings
        self.clock = clock
        self.hub = hub
        self._heartbeats: dict[str, Beat] = {}
        self._token_owners: dict[str, str] = {}  # token hash -> worker id
        self._alive_noted: float | None = None  # when this process last noted the pool alive (None: not yet)
        # when each write waiting here was asked: in the writer process, its fronts' writes reach it in no order of
        # arrival (a socket each), so a group's first is not always its earliest
        self._arrivals: list[float] = []
        # Longer without a note from any process, the whole pool was down: every process writes at least every
        # sweep interval (the sweeper) and notes it alive at most ALIVE_EVERY apart.
        self._down_after = 2 * max(settings.sweep_interval, ALIVE_EVERY) + 60

    def now(self) -> float:
        return self.clock.now()

    async def run(self, fn: Callable[..., Op[T]], /, *args: Any, write: bool = True, slow: bool = False,
                  **kwargs: Any) -> T:
        """Run the operation `fn(*args, **kwargs)`, where the argument `NOW` stands for the time it was asked (its
        arrival). A write runs in a transaction that first writes the buffered heartbeats and lapses what was due
        when it arrived (`slow`: see Store.run); in a front process, in the writer process (`writer`). The
        operation is made from module-level functions and plain values, so that it can be sent there."""
        now = self.clock.now()
        make_op = partial(fn, *[now if arg is NOW else arg for arg in args],
                          **{name: now if arg is NOW else arg for name, arg in kwargs.items()})
        if not write:
            result, _ = await self.store.run(make_op, write=False)
            return result
        if self.writer is not None:
            return await self.writer.write(make_op, now, slow)
        return await self.write(make_op, now, slow)

    async def write(self, make_op: MakeOp[T], arrived: float, slow: bool = False) -> T:
        """Run a write operation asked at `arrived` in this process's store, and publish its events."""
        self._arrivals.append(arrived)
        try:
            result, events = await self.store.run(make_op, slow=slow, prelude=partial(self._housekeeping, arrived))
        finally:
            self._arrivals.remove(arrived)
        self.hub.publish(events)
        return result

    def _housekeeping(self, arrived: float) -> Op[Committed]:
        """The prelude of every write transaction (once for a group of operations, see Store.run): the buffered
        heartbeats first, so that a worker who just called in is not taken for silent, then what ran out by
        `arrived`, when the group's first operation (the earliest: they queue in order) was asked. Judged when
        the transaction starts instead, a renewal that arrived before its lease's deadline, then waited for the
        writer (a group before it, a slow write, the writers' lock on PostgreSQL), would find the lease lapsed.
        The heartbeats leave the buffer only once the transaction is committed: nothing is lost to a rollback."""
        # The copy is taken before the first statement, after `arrived`: every heartbeat that came before the
        # time silence is judged by is in it. (A copy, taken at once: a slow write runs this on a thread.)
        beats, now = dict(self._heartbeats), self.clock.now()
        arrived = min(self._arrivals, default=arrived)  # the earliest of the group (and of any waiting after it)
        noted = self._alive_noted
        if noted is None:  # the first write since this process started: was the whole pool down?
            yield from ops.resume(now, self._down_after)
            noted = now
        elif now - noted >= ALIVE_EVERY:
            yield from ops.note_alive(now)
            noted = now
        yield from ops.apply_heartbeats(beats)
        yield from ops.expire_due(arrived, self.settings)
        return lambda: self._written(beats, noted)

    def _written(self, beats: dict[str, Beat], alive: float) -> None:
        self._alive_noted = alive
        for worker_id, beat in beats.items():
            if self._heartbeats.get(worker_id) is beat:  # not replaced by a newer one meanwhile
                del self._heartbeats[worker_id]

    async def flush(self) -> None:
        """Write buffered heartbeats and lapse what is due (the sweeper calls this)."""
        await self.run(_nothing)

    # -- credentials

    def is_admin(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.settings.admin_token.encode())  # type: ignore[union-attr]

    async def authenticate(self, token: str) -> str:
        """Bearer token -> worker id; 401 otherwise. Known tokens are answered from memory."""
        digest = hash_token(token)
        worker_id = self._token_owners.get(digest)
        if worker_id is None:
            worker_id = await self.run(ops.worker_by_token, digest, write=False)
            if worker_id is None:
                raise Problem(401, "the bearer token is not a registered worker's; register with "
                                   "POST /v1/workers/register and use the token it returns")
            self._token_owners[digest] = worker_id
        return worker_id

    # -- workers

    async def register(self, name: str, github_handle: str | None, skills: list[str], capacity_points: int,
                       max_concurrent_tasks: int, trust_tier: TrustTier = TrustTier.BASIC) -> tuple[str, str]:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token)
        now = self.clock.now()
        worker_id = new_id("w", now)
        await self.run(ops.register_worker, worker_id, digest, name, github_handle, skills, capacity_points,
                       max_concurrent_tasks, trust_tier, NOW)
        self._token_owners[digest] = worker_id
        return worker_id, token

    def heartbeat(self, worker_id: str, status: str, note: str | None) -> float:
        """Buffered: written with the next transaction or by the flusher within a second (in a front process,
        by the writer process's)."""
        now = self.clock.now()
        if self.writer is not None:
            self.writer.heartbeat(worker_id, (now, status, note))
        else:
            self.buffer_heartbeat(worker_id, (now, status, note))
        return now

    def buffer_heartbeat(self, worker_id: str, beat: Beat) -> None:
        """Keep the newest of a worker's heartbeats (those a front process forwards may come late)."""
        buffered = self._heartbeats.get(worker_id)
        if buffered is None or buffered[0] <= beat[0]:
            self._heartbeats[worker_id] = beat

    @property
    def pending_heartbeats(self) -> int:
        return len(self._heartbeats)


def _nothing() -> Op[None]:
    return None
    yield  # a generator that yields nothing
