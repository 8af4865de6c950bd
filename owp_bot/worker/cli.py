"""`owp worker …`: the worker protocol from a terminal, for a contributor without Obsidian.

    owp worker register --url http://pool:8787 --name ann --skills python,sql --capacity 5
    owp worker run            # stays up: heartbeats, shows offers as they come, asks accept/decline
    owp worker offers | accept OFFER | reject OFFER --reason R | leases | renew LEASE
    owp worker status [TASK STATUS [--pr-url URL]] | heartbeat [--status working]

The token is kept in the credentials file (mode 0600; OWP_WORKER_CONFIG overrides where).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import BaseModel

from owp_bot.protocol import models as wire
from owp_bot.worker.client import (
    ProtocolError,
    WorkerClient,
    WorkerConfig,
    config_path,
    load_config,
    save_config,
)

REASONS = [r.value for r in wire.RejectReason]
REASON_SHORTCUTS = {"time": "insufficient_time", "unclear": "unclear_requirements",
                    "skills": "skill_mismatch"}


def add_parser(commands: Any) -> None:
    worker = commands.add_parser("worker", help="work for a pool from the terminal (register, run, …)")
    _common_options(worker)
    # the same two options after the command too (`owp worker register --url …`, `owp worker offers --json`);
    # SUPPRESS: left out there, they do not overwrite the ones given before it
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, default=argparse.SUPPRESS)
    sub = _WithCommon(worker.add_subparsers(dest="worker_command", required=True), common)
    register = sub.add_parser("register", help="register as a worker and save the token (mode 0600)")
    register.add_argument("--name", required=True)
    register.add_argument("--skills", default="", help="comma-separated: python,sql,docs")
    register.add_argument("--capacity", type=int, required=True, help="estimate points you take on at once")
    register.add_argument("--max-tasks", type=int, default=1, help="tasks at once (default 1)")
    register.add_argument("--github", help="your GitHub handle")
    sub.add_parser("offers", help="ask for offers that fit your free capacity (each reserves its task)")
    accept = sub.add_parser("accept", help="accept an offer: it becomes your lease")
    accept.add_argument("offer_id")
    reject = sub.add_parser("reject", help="decline an offer")
    reject.add_argument("offer_id")
    reject.add_argument("--reason", choices=REASONS, default="insufficient_time")
    reject.add_argument("--note")
    sub.add_parser("leases", help="the tasks you hold and their leases (takes no new work)")
    status = sub.add_parser("status", help="show yourself, or report a task's status: status TASK STATUS")
    status.add_argument("task_id", nargs="?")
    status.add_argument("status", nargs="?", choices=["in_progress", "blocked", "pr_opened", "released"])
    status.add_argument("--pr-url", help="the pull request (with pr_opened)")
    status.add_argument("--message")
    renew = sub.add_parser("renew", help="extend a lease by the lease TTL, up to its cap")
    renew.add_argument("lease_id")
    heartbeat = sub.add_parser("heartbeat", help="tell the pool you are alive")
    heartbeat.add_argument("--status", choices=[s.value for s in wire.WorkerState], default="idle")
    heartbeat.add_argument("--note")
    run = sub.add_parser("run", help="stay up: heartbeat, show offers as they come, accept/decline them")
    run.add_argument("--interval", type=float, default=30.0, help="seconds between offer checks (default 30)")
    run.add_argument("--heartbeat-every", type=float, default=60.0, help="seconds between heartbeats")


def _common_options(parser: argparse.ArgumentParser, **default: Any) -> None:
    parser.add_argument("--url", help="the pool's URL (default: the one saved at registration)", **default)
    parser.add_argument("--json", action="store_true", help="print the server's answers as JSON", **default)


class _WithCommon:
    """A subparsers action whose every parser also takes `common`'s options."""

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self._subparsers, self._common = subparsers, common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._subparsers.add_parser(name, parents=[self._common], **kwargs)
        return parser


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_dispatch(args))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    except ProtocolError as exc:
        print(f"owp worker: {exc.detail}", file=sys.stderr)
        return 1


async def _dispatch(args: argparse.Namespace) -> int:
    path = config_path()
    if args.worker_command == "register":
        if not args.url:
            raise ProtocolError(400, "register needs --url, the pool's address (e.g. http://127.0.0.1:8787)")
        async with WorkerClient(args.url) as client:
            registered = await client.register(
                args.name, skills=[s.strip() for s in args.skills.split(",") if s.strip()],
                capacity_points=args.capacity, max_concurrent_tasks=args.max_tasks, github_handle=args.github)
        save_config(WorkerConfig(client.base_url, registered.worker_id, registered.token, args.name), path)
        _print(args, registered.model_copy(update={"token": "(saved)"}),
               f"registered as {registered.worker_id}; token saved to {path} (mode 0600)")
        return 0
    config = load_config(path)
    async with WorkerClient(args.url or config.url, config.token, worker_id=config.worker_id) as client:
        if args.worker_command == "run":
            return await run(client, sys.stdin, sys.stdout, interval=args.interval,
                             heartbeat_every=args.heartbeat_every)
        return await _one_shot(args, client)


async def _one_shot(args: argparse.Namespace, client: WorkerClient) -> int:
    command = args.worker_command
    if command == "offers":
        offers = await client.offers()
        _print(args, offers, _offers_text(offers))
    elif command == "accept":
        lease = await client.accept(args.offer_id)
        _print(args, lease, f"accepted: lease {lease.lease_id} on task {lease.task_id} until "
                            f"{_when(lease.lease_expires_at)}")
    elif command == "reject":
        rejected = await client.reject(args.offer_id, args.reason, args.note)
        _print(args, rejected, f"declined offer {rejected.offer_id} ({args.reason})")
    elif command == "leases":
        held = await client.leases()
        if args.json:
            print(_json([lease.model_dump(mode="json") for lease in held]))
        else:
            print("\n".join(f"{lease.lease_id}  {lease.task_id}  {lease.status:<11}  until "
                            f"{_when(lease.lease_expires_at)}  {lease.repo}: {lease.title}" for lease in held)
                  or "no leases")
    elif command == "status" and args.task_id:
        if not args.status:
            raise ProtocolError(400, "give the status to report: "
                                     "status TASK in_progress|blocked|pr_opened|released")
        task = await client.report(args.task_id, args.status, message=args.message, pr_url=args.pr_url)
        _print(args, task, f"task {task.task_id} is now {task.status.value}")
    elif command == "status":
        me = await client.me()
        _print(args, me, f"{me.worker_id} {me.name}: {me.status}, "
                         f"{me.points_in_use}/{me.capacity_points} points, "
                         f"{me.tasks_in_use}/{me.max_concurrent_tasks} tasks, "
                         f"skills {', '.join(me.skills) or '-'}")
    elif command == "renew":
        renewed = await client.renew(args.lease_id)
        _print(args, renewed, f"lease {renewed.lease_id} now ends {_when(renewed.lease_expires_at)} "
                              f"(renewable until {_when(renewed.renewable_until)})")
    elif command == "heartbeat":
        ack = await client.heartbeat(args.status, args.note)
        _print(args, ack, f"ok ({args.status}) at {_when(ack.server_time)}")
    return 0


# ------------------------------------------------------------------ owp worker run


class Lines:
    """Lines from a stream without blocking the event loop: a pipe or a terminal is read by the loop,
    a regular file (never slow) directly."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._reader: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            self._transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), self._stream)
            self._reader = reader
        except (ValueError, OSError):  # a regular file: read it directly
            self._reader = None

    async def readline(self) -> str | None:
        """The next line without its newline; None at end of input."""
        if self._reader is not None:
            raw = await self._reader.readline()
            return raw.decode().rstrip("\r\n") if raw else None
        line = self._stream.readline()
        return line.rstrip("\r\n") if line else None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def run(client: WorkerClient, stdin: IO[str], stdout: IO[str], *, interval: float,
              heartbeat_every: float) -> int:
    """Heartbeat in the background; check for offers every `interval`; ask about each new one.
    Answers: `a` accept, `d [time|unclear|skills|other] [note]` decline, `s` skip (let it lapse), `q` quit."""
    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    lines = Lines(stdin)
    await lines.open()
    state = {"status": "idle"}
    beats = asyncio.create_task(_heartbeats(client, state, heartbeat_every, say), name="owp-worker-heartbeat")
    seen: set[str] = set()
    last_why = ""
    last_problem: int | None = None
    try:
        await client.heartbeat("idle")
        say(f"owp worker {client.worker_id} on {client.base_url}: waiting for offers (Ctrl-C or q to stop)")
        while True:
            try:
                answer = await client.offers()
            except ProtocolError as exc:
                if not exc.transient:
                    raise
                wait = max(interval, exc.retry_after)
                if exc.status != last_problem:  # once per spell, not at every check
                    last_problem = exc.status
                    say(f"{exc.detail} (asking again every {wait:g}s)")
                await asyncio.sleep(wait)
                continue
            if last_problem is not None:
                last_problem = None
                say("the pool answers again")
            fresh = [o for o in answer.offers if o.offer_id not in seen]
            for offer in fresh:
                seen.add(offer.offer_id)
                say(f"offer {offer.offer_id} (task {offer.task_id}): {offer.repo} {offer.title!r} — "
                    f"{offer.estimate_points} points, "
                    f"{offer.priority.value}, skills {', '.join(offer.required_skills) or '-'}, "
                    f"area {offer.area or '-'}; expires {_when(offer.expires_at)}")
                say("  [a]ccept, [d]ecline [time|unclear|skills|other] [note], [s]kip, [q]uit?")
                if not await _decide(client, offer, lines, say, state):
                    return 0
            if answer.why_none is not None and answer.why_none.summary != last_why:
                last_why = answer.why_none.summary
                say(f"no offers: {last_why}")
            await asyncio.sleep(interval)
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        lines.close()


async def _decide(client: WorkerClient, offer: wire.Offer, lines: Lines, say: Callable[[str], None],
                  state: dict[str, str]) -> bool:
    """Ask until the offer is answered or lapses; False when the person quits or input ends."""
    remaining = (offer.expires_at - datetime.now(UTC)).total_seconds()
    try:
        line = await asyncio.wait_for(lines.readline(), timeout=max(remaining, 0.0) + 1.0)
    except TimeoutError:
        say(f"  offer {offer.offer_id} lapsed unanswered; the task went back to the pool")
        return True
    if line is None or line.strip().lower() in {"q", "quit"}:
        say("bye")
        return False
    word, _, rest = line.strip().partition(" ")
    action = word.lower()[:1]
    try:
        if action == "a":
            lease = await client.accept(offer.offer_id)
            state["status"] = "working"
            say(f"  accepted: lease {lease.lease_id} on task {lease.task_id} "
                f"until {_when(lease.lease_expires_at)}")
        elif action == "d":
            reason_word, _, note = rest.strip().partition(" ")
            reason = REASON_SHORTCUTS.get(reason_word, reason_word) if reason_word else "insufficient_time"
            if reason not in REASONS:
                reason, note = "other", rest.strip()
            await client.reject(offer.offer_id, reason, note or None)
            say(f"  declined ({reason})")
        else:
            say("  skipped; it lapses at its expiry")
    except ProtocolError as exc:
        say(f"  {exc.detail}")
    return True


async def _heartbeats(client: WorkerClient, state: dict[str, str], every: float,
                      say: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await client.heartbeat(state["status"])
        except ProtocolError as exc:
            say(f"heartbeat failed: {exc.detail}")


# ------------------------------------------------------------------ output


def _json(value: Any) -> str:
    return json.dumps(value, indent=2)


def _print(args: argparse.Namespace, model: BaseModel, text: str) -> None:
    print(model.model_dump_json(indent=2) if args.json else text)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _offers_text(offers: wire.Offers) -> str:
    if not offers.offers:
        why = offers.why_none
        return f"no offers: {why.summary}" if why else "no offers"
    return "\n".join(f"{o.offer_id}  {o.repo}  {o.title!r}  {o.estimate_points} pts  "
                     f"expires {_when(o.expires_at)}" for o in offers.offers)

