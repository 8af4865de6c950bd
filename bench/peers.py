"""Peer benchmark: `python -m bench.peers [--jobs N] [--seconds S] [--workers 1,8] [--json FILE]`.

How fast do the PostgreSQL job queues people would pick instead of the pool claim and complete no-op jobs,
on the same PostgreSQL? The numbers go beside the pool's HTTP lease rate in bench/RESULTS.md.

What is measured, for each peer and each worker count:

1. The dedicated database `owp_bench_peers` (created from `test` if missing) gets a fresh `public` schema
   (`DROP SCHEMA public CASCADE`), then the peer installs its own schema with its own API.
2. `--jobs` no-op jobs are enqueued with the peer's own batch API, spread round-robin over four "skills"
   (python, rust, docs, css), then `ANALYZE` and `CHECKPOINT`, so every window starts from the same state.
3. W workers start in this process (one event loop, the default asyncio loop, as the pool server uses).
   Every worker has all four skills. After `--warmup` seconds the completed count is read from the
   database, again every 0.5 s, and the window ends after `--seconds` (or when every job is done:
   the row is then marked drained and `--jobs` should be raised). jobs/s = completed in the window /
   window length. "Completed" is what the database says (a durable completion), not what the handler saw.
4. Workers are stopped, the next run resets the schema.

synchronous_commit stays at the server default (on); nothing is UNLOGGED (pgqueuer's default durability,
`durable`, is kept). No sleeps or poll delays are added: with a pre-filled queue no peer ever waits on
its poll interval (pgqueuer `dequeue_timeout` 30 s, procrastinate `fetch_job_polling_interval` 5 s only
apply when a fetch finds nothing).

The peers:

- `baseline`: raw asyncpg on a plain table of ours (`bench_jobs`, partial index on `id` where queued).
  Each worker owns one connection and loops: claim = one autocommit statement
  `UPDATE … WHERE id = (SELECT id … WHERE status = 'queued' AND skill = ANY($1) ORDER BY id LIMIT 1
  FOR UPDATE SKIP LOCKED) RETURNING …`, run the no-op, complete = one autocommit `UPDATE … SET status =
  'done'`. Two transactions (two commits) per job: the floor a lease-style scheduler pays.
- `pgqueuer`: pgqueuer's own `QueueManager`, one per worker, each on its own asyncpg connection (a
  QueueManager is pgqueuer's unit of scale-out: what one `pgq run` process runs). The four skills are four
  entrypoints registered on every manager. Library defaults: `batch_size=10` (one dequeue statement claims
  up to 10 jobs) and completions go through its `JobStatusLogBuffer` (flushed at `batch_size` items or
  every 0.1 s: one DELETE-from-queue + INSERT-into-log statement per flush); no `max_concurrent_tasks`.
- `pgqueuer-b1`: the same with `batch_size=1` (the one setting changed): one job per dequeue and the log
  buffer flushes as soon as it holds one item, the closest to one claim and one completion per job.
- `procrastinate`: W procrastinate `Worker`s (`app.run_worker_async`, `concurrency=1`, the library
  default; like W worker processes), all sharing one `PsycopgConnector`. The four skills are four queues;
  workers listen on all queues (`queues=None`). Claim is its `procrastinate_fetch_job_v2` function
  (FOR UPDATE SKIP LOCKED), completion `procrastinate_finish_job_v1`, one transaction each; jobs are kept
  (`delete_jobs="never"`, the default), its status-event triggers fire as they do in production.
  Changed: the psycopg pool is sized W + 2 connections (its default, psycopg_pool's `min_size=4`, would
  throttle 8 workers), `install_signal_handlers=False` (in-process), and psycopg's C implementation
  (`psycopg[binary]`, in the `bench` extra) is used as psycopg recommends; set `PSYCOPG_IMPL=python` to
  see the pure-Python libpq wrapper instead.
- `procrastinate-c`: one procrastinate `Worker` with `concurrency=W` (its in-process concurrency knob:
  one fetch loop, up to W jobs running). Same as `procrastinate` at W = 1, so that row is skipped.

Everything runs in one process on the same machine as PostgreSQL: on a small machine the Python side of
each library is part of what is measured. Every row records the load average before and after, and the
benchmark process's own CPU use in the window (`bench CPU %`, 100 = one core): near 100 means the
library's Python side, not PostgreSQL, is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any, Protocol

import asyncpg
from rich.console import Console
from rich.table import Table

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DB = "owp_bench_peers"
SKILLS = ("python", "rust", "docs", "css")
ENQUEUE_CHUNK = 5_000
SAMPLE_EVERY = 0.5  # seconds between reads of the completed count


def skill_of(i: int) -> str:
    return SKILLS[i % len(SKILLS)]


def loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


class Peer(Protocol):
    name: str

    async def install(self, ctl: asyncpg.Connection) -> None: ...
    async def enqueue(self, ctl: asyncpg.Connection, n: int) -> None: ...
    async def completed(self, ctl: asyncpg.Connection) -> int: ...
    async def start(self, workers: int) -> None: ...
    async def stop(self) -> None: ...


# --- baseline: raw asyncpg, FOR UPDATE SKIP LOCKED -------------------------------------------------------

BASELINE_DDL = """
CREATE TABLE bench_jobs (
    id bigserial PRIMARY KEY,
    skill text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'queued',
    worker int,
    claimed_at timestamptz,
    done_at timestamptz
);
CREATE INDEX bench_jobs_queued ON bench_jobs (id) WHERE status = 'queued';
"""
BASELINE_CLAIM = """
UPDATE bench_jobs SET status = 'running', worker = $2, claimed_at = now()
WHERE id = (
    SELECT id FROM bench_jobs
    WHERE status = 'queued' AND skill = ANY($1::text[])
    ORDER BY id LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, skill, payload
"""
BASELINE_COMPLETE = "UPDATE bench_jobs SET status = 'done', done_at = now() WHERE id = $1 AND status = 'running'"


async def noop(*_: Any, **__: Any) -> None:
    """The job: nothing."""


class Baseline:
    name = "baseline"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def install(self, ctl: asyncpg.Connection) -> None:
        await ctl.execute(BASELINE_DDL)

    async def enqueue(self, ctl: asyncpg.Connection, n: int) -> None:
        await ctl.execute(
            "INSERT INTO bench_jobs (skill) SELECT ($1::text[])[1 + g % $3] FROM generate_series(0, $2 - 1) g",
            list(SKILLS),
            n,
            len(SKILLS),
        )

    async def completed(self, ctl: asyncpg.Connection) -> int:
        return int(await ctl.fetchval("SELECT count(*) FROM bench_jobs WHERE status = 'done'"))

    async def _worker(self, number: int, conn: asyncpg.Connection) -> None:
        skills = list(SKILLS)
        while not self.stopping.is_set():
            row = await conn.fetchrow(BASELINE_CLAIM, skills, number)  # transaction 1: claim
            if row is None:
                await asyncio.sleep(0.01)  # only when the queue is empty, never inside the window
                continue
            await noop(row)
            await conn.execute(BASELINE_COMPLETE, row["id"])  # transaction 2: complete

    async def start(self, workers: int) -> None:
        self.stopping.clear()
        self.conns = [await asyncpg.connect(self.dsn) for _ in range(workers)]
        self.tasks = [asyncio.create_task(self._worker(i, c)) for i, c in enumerate(self.conns)]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks)
        for conn in self.conns:
            await conn.close()


# --- pgqueuer --------------------------------------------------------------------------------------------


class PgQueuerPeer:
    def __init__(self, dsn: str, batch_size: int, name: str) -> None:
        self.dsn = dsn
        self.batch_size = batch_size
        self.name = name
        self.enqueued = 0

    async def install(self, ctl: asyncpg.Connection) -> None:
        from pgqueuer import Queries

        queries = Queries.from_asyncpg_connection(ctl)
        self.queue_table = queries.qbe.settings.queue_table
        await queries.install()

    async def enqueue(self, ctl: asyncpg.Connection, n: int) -> None:
        from pgqueuer import Queries

        queries = Queries.from_asyncpg_connection(ctl)
        for start in range(0, n, ENQUEUE_CHUNK):
            k = min(ENQUEUE_CHUNK, n - start)
            await queries.enqueue([skill_of(i) for i in range(start, start + k)], [None] * k, [0] * k)
        self.enqueued = n

    async def completed(self, ctl: asyncpg.Connection) -> int:
        # A completed job is deleted from the queue table (and logged in pgqueuer_log) by one statement.
        left = await ctl.fetchval(f"SELECT count(*) FROM {self.queue_table}")  # noqa: S608 (library's name)
        return self.enqueued - int(left)

    async def start(self, workers: int) -> None:
        from pgqueuer import Queries, QueueManager

        self.conns = [await asyncpg.connect(self.dsn) for _ in range(workers)]
        self.managers = []
        for conn in self.conns:
            qm = QueueManager(Queries.from_asyncpg_connection(conn))
            for skill in SKILLS:
                qm.entrypoint(skill)(noop)
            self.managers.append(qm)
        self.tasks = [asyncio.create_task(qm.run(batch_size=self.batch_size)) for qm in self.managers]

    async def stop(self) -> None:
        for qm in self.managers:
            qm.shutdown.set()
        await asyncio.gather(*self.tasks)
        for conn in self.conns:
            await conn.close()


# --- procrastinate ---------------------------------------------------------------------------------------


class ProcrastinatePeer:
    def __init__(self, dsn: str, one_worker: bool, name: str) -> None:
        self.dsn = dsn
        self.one_worker = one_worker  # one Worker with concurrency=W instead of W Workers
        self.name = name
        self.app: Any = None

    async def _open(self, pool_size: int) -> None:
        import procrastinate

        if self.app is not None:
            await self.app.close_async()
        connector = procrastinate.PsycopgConnector(conninfo=self.dsn, min_size=pool_size, max_size=pool_size)
        self.app = procrastinate.App(connector=connector)
        self.task = self.app.task(name="noop", pass_context=False)(noop)
        await self.app.open_async()

    async def install(self, ctl: asyncpg.Connection) -> None:
        await self._open(2)
        await self.app.schema_manager.apply_schema_async()

    async def enqueue(self, ctl: asyncpg.Connection, n: int) -> None:
        for index, skill in enumerate(SKILLS):  # the same round-robin spread as the other peers
            count = len(range(index, n, len(SKILLS)))
            deferrer = self.task.configure(queue=skill)
            for start in range(0, count, ENQUEUE_CHUNK):
                await deferrer.batch_defer_async(*({} for _ in range(min(ENQUEUE_CHUNK, count - start))))

    async def completed(self, ctl: asyncpg.Connection) -> int:
        return int(await ctl.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"))

    async def start(self, workers: int) -> None:
        await self._open(workers + 2)  # fetch/finish of W workers + heartbeat + abort polling
        opts: dict[str, Any] = {"install_signal_handlers": False, "queues": None}
        if self.one_worker:
            runs = [self.app.run_worker_async(concurrency=workers, name="w0", **opts)]
        else:
            runs = [self.app.run_worker_async(concurrency=1, name=f"w{i}", **opts) for i in range(workers)]
        self.tasks = [asyncio.create_task(r) for r in runs]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()  # procrastinate's documented way to stop run_worker_async: graceful, jobs finish
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.app.close_async()
        self.app = None


def make_peer(name: str, dsn: str) -> Peer:
    match name:
        case "baseline":
            return Baseline(dsn)
        case "pgqueuer":
            return PgQueuerPeer(dsn, batch_size=10, name=name)
        case "pgqueuer-b1":
            return PgQueuerPeer(dsn, batch_size=1, name=name)
        case "procrastinate":
            return ProcrastinatePeer(dsn, one_worker=False, name=name)
        case "procrastinate-c":
            return ProcrastinatePeer(dsn, one_worker=True, name=name)
    raise SystemExit(f"unknown peer {name!r}")


PEERS = ("baseline", "pgqueuer", "pgqueuer-b1", "procrastinate", "procrastinate-c")


# --- the runner ------------------------------------------------------------------------------------------


@dataclass
class Row:
    peer: str
    workers: int
    jobs: int  # completed inside the window
    seconds: float
    jobs_per_s: float
    enqueued: int
    drained: bool  # every job was done before the window ended: raise --jobs
    cpu_pct: float  # this process's CPU time in the window / window length (100 = one core)
    load_before: str
    load_after: str


def with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


async def ensure_database(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB):
            await conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await conn.close()


async def reset_schema(ctl: asyncpg.Connection) -> None:
    await ctl.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")


async def run_one(peer: Peer, ctl: asyncpg.Connection, workers: int, args: argparse.Namespace) -> Row:
    await reset_schema(ctl)
    await peer.install(ctl)
    await peer.enqueue(ctl, args.jobs)
    await ctl.execute("ANALYZE")
    await ctl.execute("CHECKPOINT")
    load_before = loadavg()

    await peer.start(workers)
    try:
        await asyncio.sleep(args.warmup)
        t0, cpu0 = time.perf_counter(), time.process_time()
        d0 = await peer.completed(ctl)
        deadline = t0 + args.seconds
        while True:
            await asyncio.sleep(max(0.0, min(SAMPLE_EVERY, deadline - time.perf_counter())))
            t1, cpu1 = time.perf_counter(), time.process_time()
            d1 = await peer.completed(ctl)
            if t1 >= deadline or d1 >= args.jobs:
                break
    finally:
        await peer.stop()
    seconds = t1 - t0
    return Row(
        peer=peer.name,
        workers=workers,
        jobs=d1 - d0,
        seconds=round(seconds, 2),
        jobs_per_s=round((d1 - d0) / seconds, 1),
        enqueued=args.jobs,
        drained=d1 >= args.jobs,
        cpu_pct=round(100 * (cpu1 - cpu0) / seconds),
        load_before=load_before,
        load_after=loadavg(),
    )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("asyncpg", "pgqueuer", "procrastinate", "psycopg", "psycopg-pool"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "not installed"
    with contextlib.suppress(Exception):
        import psycopg

        out["psycopg_impl"] = psycopg.pq.__impl__
    return out


def print_table(rows: list[Row], meta: dict[str, Any]) -> None:
    table = Table(title=f"Peers: no-op jobs claimed and completed on PostgreSQL {meta['postgres']}")
    for col in ("peer", "workers", "jobs", "seconds", "jobs/s", "bench CPU %", "load1 before → after"):
        table.add_column(col, justify="left" if col == "peer" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r.peer,
            str(r.workers),
            f"{r.jobs:,}" + (" (drained)" if r.drained else ""),
            f"{r.seconds:.2f}",
            f"{r.jobs_per_s:,.1f}",
            f"{r.cpu_pct:.0f}",
            f"{r.load_before.split()[0]} → {r.load_after.split()[0]}",
        )
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print(" ".join(f"{k}={v}" for k, v in meta["versions"].items()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[1])
    p.add_argument("--jobs", type=int, default=120_000, help="no-op jobs enqueued before each run")
    p.add_argument("--seconds", type=float, default=10, help="measurement window per run")
    p.add_argument("--warmup", type=float, default=2, help="seconds the workers run before the window")
    p.add_argument("--workers", default="1,8", help="comma-separated worker counts")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, from {', '.join(PEERS)}")
    p.add_argument("--dsn", default=DEFAULT_DSN, help="an existing database to run CREATE DATABASE from")
    p.add_argument("--json", metavar="FILE", help="also write the rows (and versions, settings) as JSON")
    return p


async def main_async(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    await ensure_database(args.dsn)
    dsn = with_database(args.dsn, BENCH_DB)
    ctl = await asyncpg.connect(dsn)
    meta: dict[str, Any] = {
        "postgres": await ctl.fetchval("SHOW server_version"),
        "synchronous_commit": await ctl.fetchval("SHOW synchronous_commit"),
        "versions": versions(),
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "cpus": os.cpu_count(),
    }
    rows: list[Row] = []
    try:
        for name in args.peers.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                if name == "procrastinate-c" and workers == 1:
                    continue  # identical to procrastinate with one worker
                row = await run_one(make_peer(name, dsn), ctl, workers, args)
                print(f"{row.peer:16} W={row.workers:<3} {row.jobs_per_s:10,.1f} jobs/s  load {row.load_after}")
                rows.append(row)
        await reset_schema(ctl)
    finally:
        await ctl.close()
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # procrastinate warns when its App lives in the __main__ module (a worker process could not import it
    # by path); ours never leaves this process.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    rows, meta = asyncio.run(main_async(args))
    print_table(rows, meta)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "rows": [asdict(r) for r in rows]}, f, indent=2)
    if any(r.drained for r in rows):
        print("some runs drained the queue before the window ended: raise --jobs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
