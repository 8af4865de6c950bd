"""The `owp` command: serve, demo, worker, import, backup, openapi. It parses configuration, then runs."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import ClientSession, web

from owp_bot.config import ConfigError, Settings, cannot_listen, load_settings, parse_demo_speed
from owp_bot.eventloop import loop_factory

EXIT_CONFIG = 2


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: OWP_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: OWP_PORT or 8787)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="owp", description="OWP Pool: the Open Work Protocol pool.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the pool server")
    _serve_args(serve)
    serve.add_argument("--processes", type=_positive(int),
                       help="answer HTTP in this many processes, with one more for the writes (default: "
                            "OWP_PROCESSES or 1)")
    front = commands.add_parser("serve-front", help="one HTTP process of `owp serve --processes N` (it starts them)")
    front.add_argument("--fd", type=int, required=True, help="the listening socket it inherits")
    front.add_argument("--writer", type=Path, required=True, help="the writer process's Unix socket")
    demo = commands.add_parser("demo", help="run the pool with sample repos and tasks")
    _serve_args(demo)
    demo.add_argument("--data", type=Path, default=Path("demo-data"),
                      help="directory for the demo database (a fresh one on every run)")
    demo.add_argument("--workers", type=_positive(int), default=6, help="simulated workers (default 6)")
    demo.add_argument("--speed", type=_demo_speed,
                      help="simulated seconds per real second, such as 2.5; TTLs scale with it "
                           "(default: OWP_DEMO_SPEED or 60, an hour a minute)")
    demo.add_argument("--seed", type=int, help="seed of the simulation, for a repeatable run")
    demo.add_argument("--no-start", action="store_true",
                      help="only serve; start the simulated workers later with POST /v1/demo/start")
    from owp_bot.worker.cli import add_parser as add_worker_parser

    add_worker_parser(commands)
    backup = commands.add_parser("backup", help="copy the SQLite database while the server runs")
    backup.add_argument("destination", type=Path, help="the backup file to write")
    backup.add_argument("--db", type=Path, help="the database (default: OWP_DB_PATH)")
    importer = commands.add_parser("import", help="import tasks from a YAML file")
    importer.add_argument("file", type=Path)
    target = importer.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running server (default: http://OWP_HOST:OWP_PORT)")
    target.add_argument("--db", type=Path, help="write straight into this database file instead (server stopped)")
    migrate = commands.add_parser("migrate-db", help="copy a SQLite pool into an empty PostgreSQL database")
    migrate.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH",
                         help="the SQLite database file of the stopped pool, as sqlite:PATH")
    migrate.add_argument("--to", dest="target", required=True, metavar="postgresql://…",
                         help="the PostgreSQL database (later OWP_DATABASE_URL); migrated, must hold no pool")
    openapi = commands.add_parser("openapi", help="write (or --check) the committed OpenAPI spec")
    openapi.add_argument("--check", action="store_true", help="exit 1 if the committed spec is out of date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("OWP_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command in ("serve", "serve-front"):
            from owp_bot.observability import configure_logging

            settings = load_settings()
            configure_logging(os.environ.get("OWP_LOG_LEVEL", "INFO"),  # JSON lines, secrets masked
                              tuple(s for s in (settings.admin_token, settings.github_webhook_secret,
                                                settings.github_token) if s))
            if args.command == "serve-front":
                from owp_bot.fronts import serve_front

                return serve_front(settings, args.fd, args.writer)
            return serve(settings, args.host, args.port, processes=args.processes)
        if args.command == "demo":
            from owp_bot.demo import run_demo

            return run_demo(args)
        if args.command == "worker":
            from owp_bot.worker.cli import main as worker_main

            return worker_main(args)
        if args.command == "backup":
            return backup(args.db or load_settings(require_admin_token=False).db_path, args.destination)
        if args.command == "import":
            return asyncio.run(import_file(args))
        if args.command == "migrate-db":
            return asyncio.run(migrate_db(args.source, args.target))
        if args.command == "openapi":
            return openapi(args.check)
    except ConfigError as exc:
        print(f"owp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than zero")
        return value
    return parse


def _demo_speed(text: str) -> float:
    try:
        return parse_demo_speed(text, "--speed")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def backup(database: Path, destination: Path) -> int:
    """SQLite's online backup API: a consistent copy while the server keeps writing."""
    import sqlite3

    if not database.exists():
        print(f"owp backup: no database at {database}; set OWP_DB_PATH or pass --db", file=sys.stderr)
        return 1
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=1024)  # in steps, so the server's writers are not held up
            ok = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
    finally:
        source.close()
    if ok != "ok":
        partial.unlink(missing_ok=True)
        print(f"owp backup: the copy failed its integrity check ({ok}); try again", file=sys.stderr)
        return 1
    partial.replace(destination)
    print(f"backed up {database} to {destination} ({destination.stat().st_size} bytes)")
    return 0


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          app: web.Application | None = None, processes: int | None = None) -> int:
    from owp_bot.app import create_app

    settings = settings.with_overrides(host=host or settings.host, port=settings.port if port is None else port,
                                       processes=processes or settings.processes)
    if settings.processes > 1 and app is None:
        if settings.demo_mode:
            raise ConfigError("OWP_DEMO_MODE runs its simulated workers in one process: drop --processes")
        from owp_bot.fronts import serve_processes

        return serve_processes(settings)
    app = app or create_app(settings)
    app.on_startup.append(freeze_startup_objects)  # last: after the store, the scheduler and the routes
    loop = loop_factory(settings.event_loop)()
    listening = f"OWP Pool listening on http://{settings.host}:{settings.port} ({type(loop).__module__.split('.')[0]})"
    try:  # run_app calls `print` once the server listens: our line, not aiohttp's banner
        web.run_app(app, host=settings.host, port=settings.port, shutdown_timeout=10,
                    print=lambda _banner: print(listening, flush=True), access_log=None, handle_signals=True,
                    loop=loop)
    except OSError as exc:
        raise cannot_listen(exc, settings.host, settings.port) from None
    return 0


async def freeze_startup_objects(app: web.Application) -> None:
    """Move what exists once the server has started (modules, classes, routes, settings: ~70,000 objects) out
    of the garbage collector's sight (`gc.freeze`). A full collection walked all of them every time, for
    nothing: 30-40 ms with the event loop stopped, and the largest part of the p99 latency at moderate load
    (bench/RESULTS.md). What the server creates later is collected as before."""
    gc.collect()
    gc.freeze()


async def import_file(args: argparse.Namespace) -> int:
    from owp_bot.scheduler.api import import_report
    from owp_bot.scheduler.importer import parse_import

    text = args.file.read_text(encoding="utf-8")
    if args.db:
        from owp_bot.clock import SystemClock
        from owp_bot.events import EventHub
        from owp_bot.scheduler import operations as ops
        from owp_bot.scheduler.service import NOW, Scheduler
        from owp_bot.scheduler.sqlite_store import SQLiteStore

        settings = load_settings(require_admin_token=False)
        store = SQLiteStore(args.db)
        await store.open()
        try:
            parsed = parse_import(text)
            scheduler = Scheduler(store, settings, SystemClock(), EventHub())
            results = await scheduler.run(ops.import_tasks, parsed.repos, parsed.tasks, NOW)
            report = import_report(parsed, results).model_dump(mode="json")
        finally:
            await store.close()
    else:
        settings = load_settings()
        url = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
        async with ClientSession() as session, session.post(
            f"{url}/v1/tasks/import", data=text.encode(),
            headers={"Content-Type": "application/yaml", "X-Admin-Token": settings.admin_token},
        ) as response:
            report = await response.json(content_type=None)
            if response.status != 200:
                print(f"owp import: {report.get('detail', report)}", file=sys.stderr)
                return 1
    print(json.dumps(report, indent=2))
    return 1 if report["rejected"] else 0


async def migrate_db(source: str, target: str) -> int:
    """`owp migrate-db --from sqlite:PATH --to postgresql://…`: one transaction, all or nothing."""
    from owp_bot.scheduler.postgres_store import MigrationRefused, copy_from_sqlite, is_postgres_url

    kind, _, path = source.partition(":")
    if kind != "sqlite" or not path:
        print(f"owp migrate-db: --from {source!r} is not sqlite:PATH (for example sqlite:data/pool.db)",
              file=sys.stderr)
        return EXIT_CONFIG
    if not is_postgres_url(target):
        print("owp migrate-db: --to must be a postgresql:// URL", file=sys.stderr)
        return EXIT_CONFIG
    try:
        copied = await copy_from_sqlite(Path(path), target)
    except MigrationRefused as exc:
        print(f"owp migrate-db: {exc}", file=sys.stderr)
        return 1
    for table, count in copied.items():
        print(f"{table:24} {count:>9} rows")
    print(f"copied {sum(copied.values())} rows; start the replicas with OWP_DATABASE_URL set to the target")
    return 0


def openapi(check: bool) -> int:
    from owp_bot.app import api_tables
    from owp_bot.protocol.spec import SPEC_PATH, build_spec, dumps

    text = dumps(build_spec(api_tables()))
    if check:
        if not SPEC_PATH.exists() or SPEC_PATH.read_text(encoding="utf-8") != text:
            print(f"owp openapi: {SPEC_PATH} is out of date; run `owp openapi` and commit it", file=sys.stderr)
            return 1
        return 0
    SPEC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SPEC_PATH}")
    return 0
