"""`python -m bench.store_claim [--postgres [URL]]`: the claim loop on the store alone, without HTTP.

W workers (coroutines of one process) each lease a task through `fetch_work` and open its PR through
`report_status`, as `bench.load --mode claim` does over HTTP, calling the store directly. Set beside that run,
it tells what the HTTP layer costs the scheduler (bench/RESULTS.md, eighth session). Prints leases per second,
each statement's mean time and the operations per write transaction; exits 1 if a lease was granted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench import statements
from bench.load import DEFAULT_POSTGRES, fresh_schema
from owp_bot.config import Settings
from owp_bot.eventloop import loop_factory
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Store

REPOS = 20
PR_URL = "https://github.com/acme/api/pull/1"


async def seed(store: Store, tasks: int, workers: list[str]) -> None:
    now = time.time()
    repos = [ops.RepoSpec(f"acme/r{i}", max_open_prs=tasks) for i in range(REPOS)]
    specs = [(i, ops.TaskSpec(f"acme/r{i % REPOS}", f"task {i}", key=f"k{i}")) for i in range(tasks)]
    await store.run(lambda: ops.import_tasks(repos, specs, now, "api"))
    for worker in workers:
        await store.run(lambda w=worker: ops.register_worker(w, f"hash-{w}", w, None, [], 5, 1, TrustTier.BASIC, now))
    await store.run(lambda: ops.apply_heartbeats(dict.fromkeys(workers, (now, "idle", None))))


async def claim_loop(store: Store, workers: list[str], seconds: float, most: int | None = None) -> list[str]:
    """Every worker leases and finishes tasks until the time is up (or `most` were leased): the ids of the tasks
    leased."""
    settings = Settings(admin_token="store-claim-bench-" + "0" * 16)
    leased: list[str] = []
    deadline = time.perf_counter() + seconds

    async def worker(worker_id: str) -> None:
        while time.perf_counter() < deadline and (most is None or len(leased) < most):
            leases, _ = await store.run(lambda: ops.fetch_work(worker_id, time.time(), settings))
            if not leases:
                return
            for lease in leases:
                leased.append(lease["id"])
                await store.run(lambda t=lease["id"]: ops.report_status(
                    t, "pr_opened", time.time(), worker_id=worker_id, pr_url=PR_URL))

    await asyncio.gather(*(worker(w) for w in workers))
    return leased


async def main(args: argparse.Namespace) -> int:
    statements.install()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_schema(args.postgres) as database:
            store: Store = PostgresStore(database[0]) if database else SQLiteStore(Path(tmp) / "pool.db")
            await store.open()
            try:
                workers = [f"w_{i:04d}" for i in range(args.workers)]
                await seed(store, args.tasks, workers)
                statements.TIMINGS.reset()
                started, started_wall = time.process_time(), time.perf_counter()
                leased = await claim_loop(store, workers, args.seconds, args.leases)
                cpu = time.process_time() - started
                elapsed = time.perf_counter() - started_wall
            finally:
                await store.close()
    timings = statements.TIMINGS
    transactions, operations, _ = timings.groups
    print(f"{'postgresql' if args.postgres else 'sqlite'}: {len(leased):,} leases, "
          f"{len(leased) / max(elapsed, 1e-9):,.0f} leases/s without HTTP, "
          f"CPU {1000 * cpu / max(1, len(leased)):.2f} ms per lease, "
          f"{operations / max(1, transactions):.1f} operations per write transaction")
    for name, (count, seconds) in sorted(timings.statements.items(), key=lambda item: -item[1][1]):
        print(f"  {name:28s} {count:7d} {1e6 * seconds / count:8.0f} µs")
    twice = len(leased) - len(set(leased))
    if twice:
        print(f"BROKEN: {twice} tasks leased twice", file=sys.stderr)
    return 1 if twice else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.store_claim", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=32)
    p.add_argument("--tasks", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--leases", type=int, metavar="N",
                   help="stop after N leases (or the seconds): a fixed amount of work, for counting instructions "
                   "with valgrind --tool=callgrind, against a run with --leases 0 (the seeding alone)")
    p.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, metavar="URL",
                   help="on PostgreSQL: a new schema in this database, dropped afterwards (default %(const)s)")
    return p.parse_args(argv)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        sys.exit(runner.run(main(parse())))
