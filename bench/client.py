"""The load generator, run as its own process so that its CPU is accounted apart from the server's.

`python -m bench.client SPEC.json` runs one phase and prints its tally as JSON on stdout:
- `loop`: simulated workers doing the real protocol loop on keep-alive connections (heartbeat → offers →
  accept/decline → status → pr_opened, a maintainer merging; some workers fetch with `GET /v1/work`);
  with `claimer` set, a worker only leases and finishes (`GET /v1/work`, then `pr_opened`): the claim mode;
- `raw`: one request shape hammered on N keep-alive connections (the hello ceiling, heartbeat throughput).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from collections import defaultdict
from typing import Any

from bench.rawhttp import Pool, hammer, request_bytes

ACCEPT_SHARE = 0.85  # the rest of the offers are declined
PR_SHARE = 0.75  # the rest of the leases are released
NO_WORK_PAUSE = (0.5, 1.0)  # a worker that got nothing asks again after this many seconds


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.samples: list[str] = []
        self.leases = 0

    def as_json(self, elapsed: float) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "elapsed": elapsed,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "leases_seen": self.leases,
            "latencies_ms": {k: [round(v * 1000, 3) for v in vs] for k, vs in self.latencies.items()},
            "errors": {k: dict(v) for k, v in self.errors.items()},
            "error_samples": self.samples[:10],
        }


class Worker:
    def __init__(
        self,
        spec: dict[str, Any],
        pool: Pool,
        tally: Tally,
        admin_token: str,
        rng: random.Random,
    ) -> None:
        self.token, self.fetcher, self.claimer = spec["token"], spec["fetcher"], spec.get("claimer", False)
        self.pool, self.tally, self.rng = pool, tally, rng
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.admin = {"X-Admin-Token": admin_token}
        self.seen_leases: set[str] = set()
        self.pause = spec.get("pause", 0.0)  # mean seconds between requests (--rate); 0: none

    async def call(
        self, route: str, method: str, path: str, *, admin: bool = False, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        if self.pause:  # --rate: a think time before each request, and the wait for a connection counts too
            await asyncio.sleep(self.rng.expovariate(1 / self.pause))
            started = time.perf_counter()
        headers = self.admin if admin else self.auth
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        request = request_bytes(method, path, self.pool.address, headers, json.dumps(body).encode() if body else b"")
        async with self.pool.connection() as connection:
            if not self.pause:
                started = time.perf_counter()
            status, raw = await connection.send(request)
            self.tally.latencies[route].append(time.perf_counter() - started)
        if status >= 400:
            self.tally.errors[route][status] += 1
            self.tally.samples.append(f"{method} {path} -> {status}: {raw[:300].decode(errors='replace')}")
        return status, json.loads(raw) if raw else None

    async def run(self, deadline: float) -> None:
        if self.claimer:
            return await self.claim(deadline)
        while time.perf_counter() < deadline:
            await self.call(
                "heartbeat",
                "POST",
                "/v1/workers/heartbeat",
                body={"status": "working" if self.seen_leases else "idle"},
            )
            tasks = await (self.fetch() if self.fetcher else self.take_offers())
            for task_id in tasks:
                if time.perf_counter() >= deadline:
                    return
                await self.work_on(task_id)
            if not tasks:
                await asyncio.sleep(self.rng.uniform(*NO_WORK_PAUSE))

    async def claim(self, deadline: float) -> None:
        """The claim mode, a job queue's loop: lease (`GET /v1/work`), then finish each lease (`pr_opened`)."""
        while time.perf_counter() < deadline:
            tasks = await self.fetch()
            for task_id in tasks:
                pr = {"pr_url": f"https://github.com/bench/pr/pull/{self.rng.randint(1, 10**6)}"}
                await self.call(
                    "pr_opened", "POST", f"/v1/tasks/{task_id}/status", body={"status": "pr_opened", "artifact": pr}
                )
            if not tasks:
                await asyncio.sleep(self.rng.uniform(*NO_WORK_PAUSE))

    async def fetch(self) -> list[str]:
        status, body = await self.call("work", "GET", "/v1/work")
        if status != 200:
            return []
        new = [lease["task_id"] for lease in body["leases"] if lease["lease_id"] not in self.seen_leases]
        self.seen_leases.update(lease["lease_id"] for lease in body["leases"])
        self.tally.leases += len(new)
        return new

    async def take_offers(self) -> list[str]:
        status, body = await self.call("offers", "POST", "/v1/work/offers")
        if status != 200:
            return []
        accepted = []
        for offer in body["offers"]:
            if self.rng.random() < ACCEPT_SHARE:
                status, answer = await self.call(
                    "accept", "POST", f"/v1/work/offers/{offer['offer_id']}/accept"
                )
                if status == 201:
                    self.seen_leases.add(answer["lease_id"])
                    self.tally.leases += 1
                    accepted.append(offer["task_id"])
            else:
                await self.call(
                    "reject",
                    "POST",
                    f"/v1/work/offers/{offer['offer_id']}/reject",
                    body={"reason": self.rng.choice(["insufficient_time", "skill_mismatch"])},
                )
        return accepted

    async def work_on(self, task_id: str) -> None:
        path = f"/v1/tasks/{task_id}/status"
        await self.call("status", "POST", path, body={"status": "in_progress"})
        if self.rng.random() < PR_SHARE:
            pr = {"pr_url": f"https://github.com/bench/pr/pull/{self.rng.randint(1, 10**6)}"}
            status, _ = await self.call(
                "pr_opened", "POST", path, body={"status": "pr_opened", "artifact": pr}
            )
            if status == 200:  # the maintainer merges it (on GitHub: the pull_request webhook)
                await self.call("merge", "POST", path, admin=True, body={"status": "merged"})
        else:
            await self.call("release", "POST", path, body={"status": "released"})


async def run_loop(spec: dict[str, Any]) -> dict[str, Any]:
    tally = Tally()
    pool = Pool(spec["host"], spec["port"], spec["concurrency"])
    try:
        rng = random.Random(spec["seed"])
        workers = [
            Worker(w, pool, tally, spec["admin_token"], random.Random(rng.random())) for w in spec["workers"]
        ]
        started = time.perf_counter()
        deadline = started + spec["duration"]
        running = [asyncio.create_task(w.run(deadline)) for w in workers]
        done, late = await asyncio.wait(running, timeout=spec["duration"])
        elapsed = time.perf_counter() - started
        for task in late:  # stopped mid-step at the deadline: what they hold stays held, as after a crash
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for task in done:
            task.result()  # a worker that failed fails the run
        return tally.as_json(elapsed)
    finally:
        pool.close()


async def run_raw(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    address = f"{host}:{port}"
    connections = (
        spec["connections"] if spec["kind"] == "hello" else min(spec["connections"], len(spec["tokens"]))
    )
    if spec["kind"] == "hello":
        per_connection = [[request_bytes("GET", "/hello", address, {})]] * connections
    else:
        body = b'{"status":"idle"}'
        tokens = spec["tokens"]
        per_connection = [
            [
                request_bytes(
                    "POST",
                    "/v1/workers/heartbeat",
                    address,
                    {"Authorization": f"Bearer {t}", "Content-Type": "application/json"},
                    body,
                )
                for t in tokens[i::connections]
            ]
            for i in range(connections)
        ]
    tally, elapsed = await hammer(host, port, per_connection, spec["seconds"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "elapsed": elapsed,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "latencies_ms": [round(v * 1000, 3) for v in tally.latencies],
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        spec = json.load(file)
    runner = run_loop if spec["phase"] == "loop" else run_raw
    json.dump(asyncio.run(runner(spec)), sys.stdout)


if __name__ == "__main__":
    main()
