"""The demo scenario: sample repos and tasks, and simulated workers that use the real protocol.

Every simulated worker is a `WorkerClient` talking HTTP to the pool, like a real contributor's tool: it
registers, heartbeats, takes offers (and sometimes declines, with a reason), works, opens a pull request,
and sometimes goes silent so its lease lapses and the task returns to the pool. Pull requests are opened,
merged and closed on the local GitHub stand-in, which sends signed webhook deliveries to the pool (see
`pulls.py`): the PR steps run through the production webhook path, not a shortcut.

Time is simulated: `speed` simulated seconds pass per real second, and the server's TTLs are divided by the
same factor (`demo_settings`), so at speed 60 an hour of work takes a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from owp_bot.config import Settings
from owp_bot.demo.pulls import PullRequest, WebhookPulls
from owp_bot.protocol import models as wire
from owp_bot.worker.client import ProtocolError, WorkerClient

log = logging.getLogger(__name__)
SAMPLE_TASKS = Path(__file__).with_name("tasks.yaml")
MINUTE = 60.0
DECLINE_REASONS = ("insufficient_time", "unclear_requirements", "skill_mismatch")


@dataclass(frozen=True)
class Profile:
    """How one simulated contributor behaves; rates are probabilities per offer or per lease."""

    name: str
    github: str
    skills: tuple[str, ...]
    capacity_points: int
    max_concurrent_tasks: int = 1
    decline_rate: float = 0.1
    silence_rate: float = 0.05
    merge_rate: float = 0.85  # how often a maintainer merges this contributor's PR rather than closing it
    minutes_per_point: tuple[float, float] = (15, 35)
    trusted: bool = False  # a maintainer vouched for them: they may take sensitive tasks (min_trust: trusted)
    # goes quiet on their first task whatever the dice say, so that every demo shows a lease lapsing and its
    # task going back to the pool (with ~20 sample tasks, chance alone skipped it in about one run in twenty)
    quiet_first: bool = False


PROFILES = (
    Profile("Ada (Claude Code)", "ada-codes", ("python", "sql", "security"), 5, 2, merge_rate=0.9,
            trusted=True),
    Profile("Bo (Copilot)", "bo-frontend", ("typescript", "css", "accessibility"), 4, 2),
    Profile("Chen (Aider)", "chen-writes", ("docs", "spanish", "python"), 3, 1, decline_rate=0.2),
    Profile("Dee (Cursor)", "dee-nightowl", ("python", "docs", "sql"), 3, 1, silence_rate=0.4,
            merge_rate=0.7, quiet_first=True),
    Profile("Eli (Claude Code)", "eli-types", ("typescript", "python", "css"), 4, 1, decline_rate=0.35),
    Profile("Fay (Copilot)", "fay-fullstack", ("python", "sql", "typescript", "css", "security"), 6, 2,
            merge_rate=0.75),
    Profile("Gus (Aider)", "gus-docs", ("docs", "python", "accessibility"), 3, 1, silence_rate=0.15),
    Profile("Hal (Cursor)", "hal-a11y", ("typescript", "accessibility", "docs"), 4, 1),
)


def profiles(count: int) -> list[Profile]:
    """`count` contributors: the sample ones, then numbered copies of them."""
    chosen = []
    for i in range(count):
        base = PROFILES[i % len(PROFILES)]
        if i < len(PROFILES):
            chosen.append(base)
        else:
            n = i // len(PROFILES) + 1
            chosen.append(replace(base, name=f"{base.name.split(' ')[0]} {n}", github=f"{base.github}-{n}"))
    return chosen


def demo_settings(settings: Settings, speed: float) -> Settings:
    """The server's clocks at `speed`: every TTL divided by it, housekeeping often enough to keep up."""
    sweep = max(settings.sweep_interval / speed, 0.05)
    # every simulated worker calls from 127.0.0.1, many times per real second at speed: no rate limits
    unlimited = {f.name: None for f in fields(settings) if f.name.startswith("rate_limit_")}
    return settings.with_overrides(
        demo_mode=True, demo_speed=speed, **unlimited,
        lease_ttl=settings.lease_ttl / speed, lease_max=settings.lease_max / speed,
        offer_ttl=settings.offer_ttl / speed, heartbeat_timeout=settings.heartbeat_timeout / speed,
        offline_grace=settings.offline_grace / speed, decline_cooldown=settings.decline_cooldown / speed,
        reputation_head_start=settings.reputation_head_start / speed,
        sweep_interval=sweep, heartbeat_flush_interval=min(settings.heartbeat_flush_interval, sweep),
        insights_interval=max(settings.insights_interval / speed, 1.0),
    )


class AdminClient(WorkerClient):
    """The protocol with the admin token: the scenario's set-up and its progress reads."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        super().__init__(base_url)
        self.admin_token = admin_token

    def credentials(self) -> dict[str, str]:
        return {"X-Admin-Token": self.admin_token}


@dataclass
class SimWorker:
    profile: Profile
    worker_id: str = ""
    state: str = "starting"  # starting | idle | working | silent | stopped
    working_on: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class DemoScenario:
    """Seed the pool and run simulated workers against it until cancelled."""

    def __init__(self, base_url: str, settings: Settings, pulls: WebhookPulls, *, workers: int = 6,
                 speed: float | None = None, seed: int | None = None, tasks_yaml: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.pulls = pulls
        self.speed = float(speed or settings.demo_speed)
        self.random = random.Random(seed)
        self.workers = [SimWorker(p) for p in profiles(workers)]
        self.tasks_yaml = tasks_yaml if tasks_yaml is not None else SAMPLE_TASKS.read_text(encoding="utf-8")
        self.admin = AdminClient(self.base_url, settings.admin_token)
        self.started_at = time.monotonic()
        self.state = "starting"  # starting | running | stopped | failed
        self.error: str | None = None
        self.counts: Counter[str] = Counter()
        self._group: asyncio.TaskGroup | None = None

    # -- simulated time

    def sim(self, real_seconds: float) -> float:
        return real_seconds * self.speed

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(sim_seconds / self.speed)

    def between(self, low_minutes: float, high_minutes: float) -> float:
        return self.random.uniform(low_minutes, high_minutes) * MINUTE

    @property
    def sim_elapsed(self) -> float:
        return self.sim(time.monotonic() - self.started_at)

    # -- the run

    async def seed(self) -> wire.ImportReport:
        body = self.tasks_yaml.encode()
        raw = await self.admin.request("POST", "/v1/tasks/import", data=body, content_type="application/yaml")
        await self.pulls.prepare(await self.admin.tasks())
        return wire.ImportReport.model_validate(raw)

    async def run(self) -> None:
        """Seed, then run every worker until cancelled; a failure is kept for the status view."""
        self.started_at = time.monotonic()
        try:
            await self.seed()
            self.state = "running"
            async with asyncio.TaskGroup() as group:
                self._group = group
                for worker in self.workers:
                    group.create_task(self._worker(worker), name=f"demo-{worker.profile.github}")
        except asyncio.CancelledError:
            self.state = "stopped"
            raise
        except Exception as exc:
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("the demo scenario failed")
            raise
        finally:
            for worker in self.workers:
                worker.state = "stopped"
            await self.admin.close()

    def _spawn(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._group is not None, "jobs start only while the scenario runs"
        return self._group.create_task(job)

    async def _worker(self, worker: SimWorker) -> None:
        profile = worker.profile
        async with WorkerClient(self.base_url) as client:
            registered = await client.register(profile.name, skills=list(profile.skills),
                                               capacity_points=profile.capacity_points,
                                               max_concurrent_tasks=profile.max_concurrent_tasks,
                                               github_handle=profile.github)
            worker.worker_id = registered.worker_id
            if profile.trusted:
                await self.admin.request("POST", f"/v1/workers/{worker.worker_id}/trust-tier", json_body={
                    "tier": "trusted", "reason": "demo: a maintainer vouches for this contributor"})
            worker.state = "idle"
            jobs: set[asyncio.Task[None]] = set()
            beats = self._spawn(self._heartbeats(client, worker))
            try:
                while True:
                    if worker.state == "silent":
                        await self._silence(worker, jobs | {beats})
                        jobs.clear()
                        beats = self._spawn(self._heartbeats(client, worker))
                        continue
                    jobs = {job for job in jobs if not job.done()}
                    offers = await self._offers(client)
                    for offer in offers:
                        job = await self._answer(client, worker, offer)
                        if job is not None:
                            jobs.add(self._spawn(job))
                    await self.sleep(self.between(2, 6) if offers else self.between(4, 10))
            finally:  # the task group reaps them
                for running in jobs | {beats}:
                    running.cancel()

    async def _offers(self, client: WorkerClient) -> list[wire.Offer]:
        try:
            return (await client.offers()).offers
        except ProtocolError as exc:  # e.g. marked offline between heartbeats: say so and retry later
            log.info("offers: %s", exc.detail)
            return []

    async def _heartbeats(self, client: WorkerClient, worker: SimWorker) -> None:
        every = self.sim(self.settings.heartbeat_timeout) / 4
        while True:
            with contextlib.suppress(ProtocolError):
                await client.heartbeat("working" if worker.working_on else "idle")
            self.counts["heartbeats"] += 1
            await self.sleep(every)

    async def _silence(self, worker: SimWorker, tasks: set[asyncio.Task[None]]) -> None:
        """Gone quiet: no heartbeats, no work, long enough for the pool to take the leases back."""
        for task in tasks:  # the task group reaps them
            task.cancel()
        worker.working_on.clear()
        worker.counts["silences"] += 1
        self.counts["silences"] += 1
        quiet = self.sim(self.settings.heartbeat_timeout + self.settings.offline_grace)
        await self.sleep(quiet * self.random.uniform(1.3, 2.0))
        worker.state = "idle"

    async def _answer(self, client: WorkerClient, worker: SimWorker,
                      offer: wire.Offer) -> Coroutine[Any, Any, None] | None:
        """Think a little (well within the offer's TTL), then decline or accept; accepted work is a job."""
        await self.sleep(self.sim(self.settings.offer_ttl) * self.random.uniform(0.05, 0.3))
        try:
            if self.random.random() < worker.profile.decline_rate:
                reason = self.random.choice(DECLINE_REASONS)
                await client.reject(offer.offer_id, reason, "simulated: not this one")
                worker.counts["declined"] += 1
                self.counts["declined"] += 1
                return None
            lease = await client.accept(offer.offer_id)
        except ProtocolError as exc:  # the offer lapsed while thinking: normal, the task is back in the pool
            self.counts["offers_lapsed"] += 1
            log.info("%s: %s", worker.profile.name, exc.detail)
            return None
        worker.counts["accepted"] += 1
        self.counts["accepted"] += 1
        return self._work(client, worker, offer, lease)

    async def _work(self, client: WorkerClient, worker: SimWorker, offer: wire.Offer,
                    lease: wire.OfferAccepted) -> None:
        worker.working_on.append(offer.title)
        worker.state = "working"
        try:
            await client.report(offer.task_id, "in_progress", message="simulated worker started")
            first_silence = worker.profile.quiet_first and not worker.counts["silences"]
            if self.random.random() < worker.profile.silence_rate or first_silence:
                await self.sleep(self.between(5, 20))
                worker.state = "silent"  # the worker loop notices, drops its jobs and goes quiet
                return
            low, high = worker.profile.minutes_per_point
            await self._work_for(client, lease, self.between(low, high) * offer.estimate_points)
            pull = await self.pulls.open(offer, worker.profile.github)
            worker.counts["prs"] += 1
            self.counts["prs_opened"] += 1
        except ProtocolError as exc:  # the lease lapsed or was revoked meanwhile
            self.counts["work_lost"] += 1
            log.info("%s lost %s: %s", worker.profile.name, offer.task_id, exc.detail)
            return
        finally:
            with contextlib.suppress(ValueError):
                worker.working_on.remove(offer.title)
            if worker.state == "working" and not worker.working_on:
                worker.state = "idle"
        self._spawn(self._review(worker, pull))  # the maintainer's side: it outlives the worker's silence

    async def _work_for(self, client: WorkerClient, lease: wire.OfferAccepted, sim_seconds: float) -> None:
        """Work, renewing the lease before it runs out (a real tool would do the same)."""
        renew_every = self.sim(self.settings.lease_ttl) * 0.6
        while sim_seconds > 0:
            step = min(sim_seconds, renew_every)
            await self.sleep(step)
            sim_seconds -= step
            if sim_seconds > 0:
                await client.renew(lease.lease_id)

    async def _review(self, worker: SimWorker, pull: PullRequest) -> None:
        """The maintainer reviews: most PRs merge, some are closed and the task goes back to the pool."""
        await self.sleep(self.between(20, 80))
        if self.random.random() < worker.profile.merge_rate:
            await self.pulls.merge(pull)
            worker.counts["merged"] += 1
            self.counts["merged"] += 1
        else:
            await self.pulls.close(pull)
            worker.counts["closed"] += 1
            self.counts["closed"] += 1
