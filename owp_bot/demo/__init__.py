"""`owp demo`: the pool on SQLite with sample repos, tasks and simulated workers, shown live in the terminal.

It starts the local GitHub stand-in and the pool (demo mode, TTLs scaled by `--speed`), starts the scenario
(`scenario.py`) and shows its progress with rich until Ctrl-C, which stops everything in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aiohttp import web

from owp_bot.config import ConfigError, Settings, cannot_listen, load_settings
from owp_bot.eventloop import loop_factory

DB_FILES = ("pool.db", "pool.db-wal", "pool.db-shm")

if TYPE_CHECKING:
    from rich.console import Console


def run_demo(args: argparse.Namespace) -> int:
    try:  # the loop is uvloop's unless OWP_EVENT_LOOP says otherwise; demo() reports a bad value
        with asyncio.Runner(loop_factory=loop_factory(os.environ.get("OWP_EVENT_LOOP") or "auto")) as runner:
            return runner.run(demo(args))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130


async def demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from rich.console import Console

    from owp_bot.app import create_app
    from owp_bot.demo.api import DEMO_GITHUB
    from owp_bot.demo.pulls import demo_github
    from owp_bot.demo.scenario import demo_settings

    fresh_demo_data(args.data)
    env = dict(os.environ)
    env.setdefault("OWP_ADMIN_TOKEN", secrets.token_urlsafe(24))
    env["OWP_DB_PATH"] = str(args.data / "pool.db")
    env.pop("OWP_DATABASE_URL", None)  # the demo is the embedded SQLite pool
    settings = load_settings(env)
    settings = demo_settings(settings, settings.demo_speed if args.speed is None else args.speed)
    settings = settings.with_overrides(host=args.host or settings.host,
                                       port=settings.port if args.port is None else args.port)
    console = Console(file=out or sys.stdout)
    if not os.environ.get("OWP_LOG_LEVEL"):  # the live view is the demo's output; logs only for trouble
        logging.getLogger().setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with contextlib.AsyncExitStack() as stack:
            github, settings = await stack.enter_async_context(demo_github(settings))
            app = create_app(settings)
            app[DEMO_GITHUB] = github
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)  # the pool (and its scenario) stop before the stand-in
            await _serve(runner, settings, args, console, stop)
            console.print("stopping…")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    console.print("stopped")
    return 0


def fresh_demo_data(directory: Path) -> None:
    """Each demo starts from an empty database (the GitHub stand-in starts empty too). Only a database the
    demo created is removed: a marker file says so, so `--data` pointing at a real pool is refused."""
    marker = directory / ".owp-demo"
    files = [directory / name for name in DB_FILES]
    if any(f.exists() for f in files) and not marker.exists():
        raise ConfigError(f"{directory} holds a pool database that `owp demo` did not create; "
                          "choose another directory with --data")
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text("created by `owp demo`; its database is replaced on every run\n", encoding="utf-8")
    for f in files:
        f.unlink(missing_ok=True)


async def _serve(runner: web.AppRunner, settings: Settings, args: argparse.Namespace, console: Console,
                 stop: asyncio.Event) -> None:
    from rich.live import Live

    from owp_bot.demo.api import DEMO
    from owp_bot.demo.view import render, summary

    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        raise cannot_listen(exc, settings.host, settings.port) from None
    url = f"http://{settings.host}:{runner.addresses[0][1]}"
    console.print(f"[bold]OWP Pool demo[/]\n  dashboard and API: {url}/\n  admin token:       "
                  f"{settings.admin_token}\n  database:          {settings.db_path}\n"
                  f"  speed:             x{settings.demo_speed:g} ({args.workers} simulated workers)\n"
                  "  stop with Ctrl-C", highlight=False)
    controller = runner.app[DEMO]
    if not args.no_start:
        controller.start(url, workers=args.workers, seed=args.seed)
    if console.is_terminal:
        with Live(render(await controller.status()), console=console, auto_refresh=False) as live:
            while not await _stopped(stop, 0.5):
                live.update(render(await controller.status()), refresh=True)
    else:  # a log, not a screen: one line every few seconds
        while not await _stopped(stop, 5.0):
            console.print(summary(await controller.status()), highlight=False, soft_wrap=True)


async def _stopped(stop: asyncio.Event, within: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await stop.wait()
    return stop.is_set()
