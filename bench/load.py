"""The load benchmark: `python -m bench.load --workers W --tasks M --duration S [--json FILE]`.

1. Starts the pool server as a subprocess on a fresh SQLite file, or with `--postgres [URL]` in a new schema
   of that PostgreSQL database, dropped afterwards (the command and environment are pluggable:
   `--server-cmd`, `--server-env`), seeds repos and ready tasks through `POST /v1/tasks/import` and
   registers the workers.
2. Ceiling: a bare aiohttp hello route (bench/hello.py, its own process) hammered on `--connections`
   keep-alive connections; then `POST /v1/workers/heartbeat` on the pool the same way. Throughputs are
   reported as ratios of that ceiling: the machines are noisy, ratios measured side by side are comparable.
3. The loop: W simulated workers (bench/client.py, in separate processes from the server) doing the real
   protocol for `--duration` seconds with at most `--concurrency` requests in flight.
4. Replays the event log (bench/invariants.py) and compares each repo's budget with the API's.
Exits 1 if an invariant broke or any request failed; the last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import mix
from bench.invariants import Replay
from bench.statements import ENV as STATEMENTS_ENV
from owp_bot.eventloop import resolve

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 (a throwaway server's)
DEFAULT_SERVER = "{python} -m owp_bot serve --host 127.0.0.1 --port {port}"
# Every simulated worker comes from 127.0.0.1 and calls far more often than a person: the bench measures the
# scheduler, not the rate limiter, so the limits are off (--server-env can set them back).
SERVER_ENV = {
    "OWP_RATE_LIMIT_WORKER": "off",
    "OWP_RATE_LIMIT_ADMIN": "off",
    "OWP_RATE_LIMIT_ADDRESS": "off",
    "OWP_RATE_LIMIT_REGISTER": "off",
}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
LATENCY_ROUTES = ("offers", "accept", "work")
RATE_CONCURRENCY = 256  # --rate: in flight at most (far above what a server keeping up has in flight)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=100, help="simulated workers (W)")
    p.add_argument("--tasks", type=int, default=1000, help="ready tasks seeded (M)")
    p.add_argument("--repos", type=int, default=0, help="repos (N); default max(20, W/4)")
    p.add_argument("--duration", type=float, default=15, help="seconds of the worker loop")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight at most, across clients")
    p.add_argument(
        "--rate",
        type=float,
        default=0,
        help="open the loop: each worker pauses before every request (exponential, mean W/RATE s), so that the "
        "workers offer about RATE requests/s while the server keeps up; latency then counts the wait for a "
        f"connection too, and at most {RATE_CONCURRENCY} requests are in flight. 0 (default): a closed loop, "
        "as fast as the server answers, --concurrency in flight",
    )
    p.add_argument("--connections", type=int, default=32, help="connections of the ceiling/heartbeat phases")
    p.add_argument("--ceiling-seconds", type=float, default=4, help="seconds of each ceiling phase")
    p.add_argument("--client-procs", type=int, default=1, help="client processes of the loop")
    p.add_argument(
        "--mode",
        choices=("loop", "claim"),
        default="loop",
        help="loop: the whole protocol with offers, budgets and area locks; claim: lease and finish only, "
        "budgets and locks out of the way (a job queue's loop, to compare with bench.peers)",
    )
    p.add_argument("--per-request", type=int, default=1, help="claim mode: leases per GET /v1/work at most")
    p.add_argument("--max-open-prs", type=int, metavar="N",
                   help="loop mode: every repo's review budget (default: 4 to 20 each); a small one keeps the "
                   "pool where a busy one spends its days, every budget full and the ready tasks waiting")
    p.add_argument("--fetch-share", type=float, default=0.3, help="share of workers that use GET /v1/work")
    p.add_argument("--batch", type=int, default=5000, help="tasks per import request")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument(
        "--server-cmd",
        default=DEFAULT_SERVER,
        help="the server command; {python} {port} {db} are filled in (default: %(default)s)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the server (repeatable), e.g. a database URL",
    )
    p.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES,
        metavar="URL",
        help="run the server on PostgreSQL: a new schema in this database, dropped afterwards (default %(const)s)",
    )
    p.add_argument(
        "--statements",
        action="store_true",
        help="time every named statement the server runs during the loop (bench/statements.py) and report them",
    )
    p.add_argument("--processes", type=int, default=1,
                   help="the server's OWP_PROCESSES: HTTP in this many processes, writes in one more")
    p.add_argument("--json", type=Path, help="also write every number to this file")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(values), 2),
    }


def with_children(pid: int) -> list[int]:
    """A process and its children (`owp serve --processes N`: the writer and its fronts), from Linux /proc."""
    found = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process and its children, in MB (the peak: the sum of their peaks)."""
    found = {"VmRSS": 0.0, "VmHWM": 0.0}
    for member in with_children(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in found:
                    found[key] += int(value.split()[0]) / 1024
    return round(found["VmRSS"], 1), round(found["VmHWM"], 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process and its children have used so far (Linux /proc), in seconds."""
    total = 0
    for member in with_children(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def fresh_schema(url: str | None) -> AsyncIterator[tuple[str, str] | None]:
    """A new PostgreSQL schema for the server (the server's URL and the schema), dropped when the block ends;
    None without a URL."""
    if url is None:
        yield None
        return
    schema = f"owp_bench_{os.getpid()}_{int(time.time())}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}", schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@contextlib.asynccontextmanager
async def process(
    argv: list[str], env: dict[str, str], ready_url: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run a server (its output goes to `log`) until the block ends; yields once `ready_url` answers 200."""
    with open(log, "ab") as output:  # noqa: ASYNC230 (opened once, before the server starts)
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output
        )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if proc.returncode is not None:
                    raise RuntimeError(
                        f"{argv[0]} exited with {proc.returncode} before it answered {ready_url}; see {log}"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(ready_url) as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{' '.join(argv)} did not answer {ready_url} within 60 s")
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run_client(spec: dict[str, Any], workdir: Path, name: str) -> dict[str, Any]:
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.client", str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the load client {name} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    return result


class Admin:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.headers = {"X-Admin-Token": ADMIN_TOKEN}

    async def get(self, path: str, **params: Any) -> Any:
        async with self.session.get(path, headers=self.headers, params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def import_tasks(self, document: str) -> Any:
        async with self.session.post(
            "/v1/tasks/import",
            data=document.encode(),
            headers={**self.headers, "Content-Type": "application/yaml"},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"import failed: {response.status} {await response.text()}")
            return await response.json()

    async def settled(self, after: int) -> None:
        """Requests the clients gave up on at the deadline still run to their end on the server (by design):
        wait until the log stops growing before replaying it."""
        while True:
            found = await self.events(after)
            if not found:
                await asyncio.sleep(0.5)
                if not await self.events(after):
                    return
                continue
            after = found[-1]["seq"]

    async def events(self, after: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = await self.get("/v1/audit/events", after=after, limit=1000)
            found += page["events"]
            if page["next_cursor"] is None:
                return found
            after = page["next_cursor"]


async def seed(
    admin: Admin, session: aiohttp.ClientSession, args: argparse.Namespace
) -> tuple[dict[str, mix.RepoMix], dict[str, mix.TaskMix], dict[str, mix.WorkerMix], list[dict[str, Any]]]:
    claim = args.mode == "claim"
    repo_count = args.repos or max(20, args.workers // 4)
    repo_list = mix.claim_repos(repo_count) if claim else mix.repos(repo_count, args.seed, args.max_open_prs)
    task_list = mix.tasks(args.tasks, repo_list, args.seed)
    by_key = {t.key: t for t in task_list}
    tasks: dict[str, mix.TaskMix] = {}
    for start in range(0, max(1, len(task_list)), args.batch):
        batch = task_list[start : start + args.batch]
        report = await admin.import_tasks(mix.import_document(repo_list, batch, with_repos=start == 0))
        if report["created"] != len(batch):
            raise RuntimeError(f"import created {report['created']} of {len(batch)}: {report['entries'][:3]}")
        tasks.update((e["task_id"], by_key[e["key"]]) for e in report["entries"])

    async def register(worker: mix.WorkerMix) -> tuple[str, str]:
        async with session.post("/v1/workers/register", json=worker.registration()) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"register failed: {response.status} {body}")
            return body["worker_id"], body["token"]

    workers: dict[str, mix.WorkerMix] = {}
    specs = []
    gate = asyncio.Semaphore(16)
    worker_list = mix.claim_workers(args.workers, args.per_request) if claim else mix.workers(args.workers, args.seed)
    for i, worker in enumerate(worker_list):
        async with gate:
            worker_id, token = await register(worker)
        workers[worker_id] = worker
        fetcher = claim or int((i + 1) * args.fetch_share) > int(i * args.fetch_share)
        specs.append({"token": token, "fetcher": fetcher, "claimer": claim})
    return {r.name: r for r in repo_list}, tasks, workers, specs


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="owp-bench-"))
    port, hello_port = free_port(), free_port()
    db = workdir / "pool.db"
    base = f"http://127.0.0.1:{port}"
    fill = {"python": sys.executable, "port": str(port), "db": str(db)}
    argv = [part.format(**fill) for part in shlex.split(args.server_cmd)]
    env = {**os.environ, "OWP_DB_PATH": str(db), "OWP_ADMIN_TOKEN": ADMIN_TOKEN, **SERVER_ENV,
           "OWP_PROCESSES": str(args.processes)}
    timings = workdir / "statements.json"
    if args.statements:
        if args.server_cmd != DEFAULT_SERVER:
            raise SystemExit("--statements runs its own server command (bench/statements.py); drop --server-cmd")
        argv = [sys.executable, "-m", "bench.statements", *argv[3:]]  # the same arguments after `-m owp_bot`
        env[STATEMENTS_ENV] = str(timings)
    env.update(item.format(**fill).split("=", 1) for item in args.server_env)  # type: ignore[misc]
    result: dict[str, Any] = {
        "store": "postgresql" if args.postgres else "sqlite",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    result["event_loop"] = resolve(env.get("OWP_EVENT_LOOP") or "auto")  # the server's (unless --server-cmd)
    hello_argv = [sys.executable, "-m", "bench.hello", "--port", str(hello_port), "--loop", result["event_loop"]]
    result["workdir"] = str(workdir)
    async with process(
        hello_argv, dict(os.environ), f"http://127.0.0.1:{hello_port}/healthz", workdir / "hello.log"
    ):
        hello = await run_client(
            {
                "phase": "raw",
                "kind": "hello",
                "host": "127.0.0.1",
                "port": hello_port,
                "connections": args.connections,
                "seconds": args.ceiling_seconds,
            },
            workdir,
            "hello",
        )
    async with fresh_schema(args.postgres) as database:
        if database is not None:
            env["OWP_DATABASE_URL"], result["schema"] = database
        async with (
            process(argv, env, f"{base}/readyz", workdir / "server.log") as server,
            aiohttp.ClientSession(base) as session,
        ):
            admin = Admin(session)
            started = time.perf_counter()
            repos, tasks, workers, specs = await seed(admin, session, args)
            result["seed_seconds"] = round(time.perf_counter() - started, 1)
            first = (await admin.get("/v1/audit/events", type="worker.registered", limit=1))["events"]
            after = first[0]["seq"] - 1 if first else 0
            beats = await run_client(
                {
                    "phase": "raw",
                    "kind": "heartbeat",
                    "host": "127.0.0.1",
                    "port": port,
                    "connections": args.connections,
                    "seconds": args.ceiling_seconds,
                    "tokens": [s["token"] for s in specs],
                },
                workdir,
                "heartbeat",
            )
            procs = max(1, min(args.client_procs, len(specs)))
            loops = [
                run_client(
                    {
                        "phase": "loop",
                        "host": "127.0.0.1",
                        "port": port,
                        "admin_token": ADMIN_TOKEN,
                        "seed": args.seed + i,
                        "duration": args.duration,
                        "concurrency": max(1, (RATE_CONCURRENCY if args.rate else args.concurrency) // procs),
                        "workers": [{**s, "pause": len(specs) / args.rate if args.rate else 0.0}
                                    for s in specs[i::procs]],
                    },
                    workdir,
                    f"loop{i}",
                )
                for i in range(procs)
            ]
            rss: list[float] = []
            sampling = asyncio.create_task(_sample_rss(server.pid, rss))
            cpu_before = cpu_seconds(server.pid)
            if args.statements:
                server.send_signal(signal.SIGUSR1)  # count from here
            loop_results = await asyncio.gather(*loops)
            result["server_cpu_seconds"] = round(cpu_seconds(server.pid) - cpu_before, 2)
            if args.statements:
                result["statements"] = await statement_timings(server, timings)
            sampling.cancel()
            result["server_rss_mb"], result["server_peak_rss_mb"] = rss_mb(server.pid)
            result["server_rss_mb_max_during_loop"] = max(rss, default=0.0)
            await admin.settled(after)
            replay = Replay(repos, tasks, workers)
            for event in await admin.events(after):
                replay.apply(event)
            replay.check_budgets(
                {r["repo"]: r["budget"]["in_flight"] for r in (await admin.get("/v1/repos"))["repos"]}
            )
    result.update(summarise(hello, beats, loop_results, replay, args))
    return result


async def statement_timings(server: asyncio.subprocess.Process, path: Path) -> dict[str, Any]:
    """Ask the server for its statement timings (SIGUSR2: bench/statements.py writes them) and read them."""
    server.send_signal(signal.SIGUSR2)
    for _ in range(100):
        with contextlib.suppress(OSError, ValueError):
            found: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
            return found
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server wrote no statement timings to {path}")


async def _sample_rss(pid: int, into: list[float]) -> None:
    while True:
        into.append(rss_mb(pid)[0])
        await asyncio.sleep(0.5)


def summarise(
    hello: dict[str, Any],
    beats: dict[str, Any],
    loops: list[dict[str, Any]],
    replay: Replay,
    args: argparse.Namespace,
) -> dict[str, Any]:
    ceiling = sum(hello["statuses"].values()) / hello["elapsed"]
    heartbeat_ok = sum(v for k, v in beats["statuses"].items() if k.startswith("2"))
    heartbeat_rps = heartbeat_ok / beats["elapsed"]
    elapsed = max(loop["elapsed"] for loop in loops)
    routes: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, int]] = {}
    for loop in loops:
        for route, values in loop["latencies_ms"].items():
            routes.setdefault(route, {"latencies": []})["latencies"] += values
        for route, statuses in loop["errors"].items():
            for status, n in statuses.items():
                errors.setdefault(route, {})[status] = errors.get(route, {}).get(status, 0) + n
    table = {
        route: {
            "count": len(r["latencies"]),
            "rps": round(len(r["latencies"]) / elapsed, 1),
            "ratio": round(len(r["latencies"]) / elapsed / ceiling, 3),
            **percentiles(r["latencies"]),
        }
        for route, r in sorted(routes.items())
    }
    total = sum(r["count"] for r in table.values())
    heartbeat_errors = sum(v for k, v in beats["statuses"].items() if not k.startswith("2"))
    if heartbeat_errors:
        errors.setdefault("heartbeat(ceiling phase)", {})["non-2xx"] = heartbeat_errors
    return {
        "ceiling_rps": round(ceiling, 1),
        "ceiling_latency_ms": percentiles(hello["latencies_ms"]),
        "heartbeat_rps": round(heartbeat_rps, 1),
        "heartbeat_ratio": round(heartbeat_rps / ceiling, 3),
        "heartbeat_latency_ms": percentiles(beats["latencies_ms"]),
        "loop_seconds": round(elapsed, 2),
        "loop_rps": round(total / elapsed, 1),
        "loop_ratio": round(total / elapsed / ceiling, 3),
        "routes": table,
        "leases_granted": replay.counts["lease.granted"],
        # granted within the timed window (answers received before the deadline), per second
        "leases_per_second": round(sum(loop["leases_seen"] for loop in loops) / elapsed, 1),
        "offers_created": replay.counts["offer.created"],
        "client_cpu_seconds": round(sum(loop["cpu_seconds"] for loop in loops), 1),
        "errors": errors,
        "error_samples": [s for loop in loops for s in loop["error_samples"]][:10],
        "invariants_ok": not replay.broken,
        "invariant_breaks": replay.broken,
        "events_replayed": sum(replay.counts.values()),
    }


def report(result: dict[str, Any]) -> str:
    a = result["args"]
    lines = [
        f"OWP Pool load ({a['mode']} mode, {result['store']}): W={a['workers']} workers, M={a['tasks']} ready tasks, "
        f"{a['duration']} s, "
        + (f"offered ~{a['rate']:g} req/s (open loop)" if a.get("rate") else f"concurrency {a['concurrency']}")
        + f", {result['machine']['cpus']} CPUs, "
        f"Python {result['machine']['python']}",
        f"seeded in {result['seed_seconds']} s; database and server log in {result['workdir']}",
        f"ceiling (bare aiohttp hello on {result['event_loop']}, {a['connections']} conns): "
        f"{result['ceiling_rps']:.0f} req/s",
        f"heartbeat saturation: {result['heartbeat_rps']:.0f} req/s = "
        f"{result['heartbeat_ratio']:.2f} of ceiling, p99 {result['heartbeat_latency_ms']['p99']} ms",
        f"worker loop: {result['loop_rps']:.0f} req/s = {result['loop_ratio']:.2f} of ceiling, "
        f"client CPU {result['client_cpu_seconds']} s over {result['loop_seconds']} s",
        f"{'route':<10} {'count':>8} {'req/s':>8} {'ratio':>6} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'max':>7}  (ms)",
    ]
    for route, r in result["routes"].items():
        lines.append(
            f"{route:<10} {r['count']:>8} {r['rps']:>8.0f} {r['ratio']:>6.2f} {r['p50']:>7.2f} "
            f"{r['p95']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.1f}"
        )
    lines += [
        f"leases granted: {result['leases_granted']} ({result['leases_per_second']:.0f}/s); "
        f"offers created: {result['offers_created']}",
        f"server CPU over the loop: {result['server_cpu_seconds']} s"
        + (f" = {1000 * result['server_cpu_seconds'] / leases:.2f} ms per lease granted"
           if (leases := result["leases_per_second"] * result["loop_seconds"]) else ""),
        f"server RSS: {result['server_rss_mb']} MB at the end, peak {result['server_peak_rss_mb']} MB",
        f"errors: {result['errors'] or 'none'}",
    ]
    lines += [f"  {s}" for s in result["error_samples"]]
    if "statements" in result:
        lines += statements_report(result["statements"], leases)
    lines.append(
        f"invariants: {'OK' if result['invariants_ok'] else 'BROKEN'} "
        f"({result['events_replayed']} events replayed)"
    )
    lines += [f"  {b}" for b in result["invariant_breaks"]]
    p99 = " ".join(f"{route}={result['routes'].get(route, {}).get('p99', 0)}ms" for route in LATENCY_ROUTES)
    lines.append(
        f"SUMMARY {'OK' if passed(result) else 'FAIL'} mode={a['mode']} W={a['workers']} M={a['tasks']} "
        + (f"rate={a['rate']:g} " if a.get("rate") else "") + f"p99 {p99} "
        f"heartbeat/ceiling={result['heartbeat_ratio']:.2f} leases/s={result['leases_per_second']:.0f} "
        f"rss={result['server_peak_rss_mb']}MB invariants={'OK' if result['invariants_ok'] else 'BROKEN'} "
        f"errors={sum(sum(v.values()) for v in result['errors'].values())} store={result['store']}"
        + (f" processes={a['processes']}+1" if a.get("processes", 1) > 1 else "")
    )
    return "\n".join(lines)


def statements_report(timings: dict[str, Any], leases: float) -> list[str]:
    """The statements of the loop, most time first: how often per lease granted, and their mean wall time."""
    tx = timings["transactions"]
    lines = [
        f"write transactions: {tx['count']}, {tx['operations'] / max(tx['count'], 1):.1f} operations each, "
        f"the writer busy {tx['ms'] / 10 / timings['seconds']:.0f}% of the loop",
        f"{'statement':<28} {'count':>8} {'per lease':>9} {'mean µs':>8} {'total ms':>9}",
    ]
    for name, s in list(timings["statements"].items())[:20]:
        lines.append(f"{name:<28} {s['count']:>8} {s['count'] / max(leases, 1):>9.2f} "
                     f"{1000 * s['ms'] / s['count']:>8.0f} {s['ms']:>9.0f}")
    return lines


def passed(result: dict[str, Any]) -> bool:
    return bool(result["invariants_ok"]) and not result["errors"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = asyncio.run(bench(args))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(report(result), flush=True)
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
