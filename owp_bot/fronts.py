"""`owp serve --processes N` (OWP_PROCESSES): one writer process, N front processes that answer HTTP.

The process `owp serve` starts is the writer (scheduler/writer_link.py says why and what they say to each
other). It opens the store and runs the background work as a single process would, and the writer service on a
Unix socket in a private temporary directory. It listens on the pool's address but never accepts: it starts N
`owp serve-front` processes that inherit the listening socket and accept from it, each connection going to a
front that is waiting for one. A front that exits is started again a second later; a front whose writer went
away exits. Ctrl-C and SIGTERM reach the writer, which stops the fronts first (they answer what they have
begun), then its own work, then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from owp_bot.config import ConfigError, Settings, cannot_listen
from owp_bot.eventloop import loop_factory
from owp_bot.keys import SCHEDULER, STORE
from owp_bot.observability import METRICS
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.writer_link import WriterLink, WriterService

log = logging.getLogger(__name__)
STARTING = 60.0  # seconds for every front to connect before `owp serve` gives up
RESTART_AFTER = 1.0  # seconds before a front that exited is started again (doubling while it keeps failing)
RESTART_LONGEST = 60.0  # a front that ran this long before it exited had not been failing as it started
EXIT_OTHER_CODE = 3  # a front's exit status when the writer refused it: their code differs
STOPPING = 15.0  # seconds a front has to finish after SIGTERM, before SIGKILL
STATS_EVERY = 5.0  # seconds between a front's request counters sent to the writer (a scrape sends them too)


@contextlib.asynccontextmanager
async def writer(app: web.Application, path: Path) -> AsyncIterator[WriterService]:
    """Run `app` (the whole pool, unserved) with the writer service on the Unix socket `path`."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()  # the store, the scheduler and the background work
    try:
        service = WriterService(app)
        await service.start(path)
        try:
            yield service
        finally:
            await service.stop()
    finally:
        await runner.cleanup()


def serve_processes(settings: Settings) -> int:
    try:  # OWP_HOST may be IPv6 or a name; a name with several addresses (localhost): its IPv4 one, if any
        found = socket.getaddrinfo(settings.host or None, settings.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, _, _, _, address = next((a for a in found if a[0] == socket.AF_INET), found[0])
        listener = socket.create_server(address, family=family, backlog=1024)
    except OSError as exc:
        raise cannot_listen(exc, settings.host, settings.port) from None
    with listener, asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        return runner.run(_serve(settings, listener))


async def _serve(settings: Settings, listener: socket.socket) -> int:
    from owp_bot.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    directory = Path(tempfile.mkdtemp(prefix="owp-"))
    path = directory / "writer.sock"
    code = 0
    command = [sys.executable, "-m", "owp_bot", "serve-front", "--fd", str(listener.fileno()), "--writer", str(path)]
    try:
        async with writer(create_app(settings), path) as service:
            store = service.app[STORE]
            if isinstance(store, PostgresStore):
                await check_connections(store, settings.processes)
            fronts = [_Front(index, command, listener.fileno()) for index in range(settings.processes)]
            kept = [asyncio.create_task(front.keep_running(), name=f"owp-front-{front.index}") for front in fronts]
            try:
                async with asyncio.timeout(STARTING):
                    while service.front_count < settings.processes and not stop.is_set():
                        await _either(service.connected, stop)  # Ctrl-C while they start stops it all
                        service.connected.clear()
            except TimeoutError:
                raise ConfigError(f"only {service.front_count} of {settings.processes} front processes started "
                                  f"within {STARTING:.0f}s; their errors are above") from None
            else:
                host, port = listener.getsockname()[:2]
                host = f"[{host}]" if ":" in host else host
                print(f"OWP Pool listening on http://{host}:{port} ({settings.processes} front processes and a "
                      f"writer, pid {os.getpid()})", flush=True)
                if not await _until_stopped(stop, kept):
                    log.error("no front process is left to answer HTTP (each was refused: the package changed on "
                              "disk); `owp serve` stops, to be started again with the new code")
                    code = EXIT_OTHER_CODE
            finally:
                await asyncio.gather(*(front.stop() for front in fronts))
                for task in kept:
                    task.cancel()
                await asyncio.gather(*kept, return_exceptions=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return code


async def check_connections(store: PostgresStore, processes: int) -> None:
    """Warn when the fronts' pools and the writer's, once full, would want more connections than PostgreSQL has
    left: requests would then get 503s whenever the pool is busy."""
    wanted = processes * store.pool_size + store.pool_size - 1  # the writer holds one already, and its listener
    left = await store.connections_left()
    if wanted > left:
        log.warning("OWP_PROCESSES=%d on PostgreSQL: the fronts and the writer may open %d more connections (up to %d "
                    "a process), and the server takes %d more now; raise its max_connections or lower OWP_PROCESSES, "
                    "or requests will be answered 503 while the pool is busy (docs/operations.md)", processes, wanted,
                    store.pool_size, left)


async def _until_stopped(stop: asyncio.Event, kept: list[asyncio.Task[None]]) -> bool:
    """Wait for `stop` (True); False when every front's task ended first (each refused): the writer would keep the
    listening socket, whose connections nobody accepts, hanging in its backlog."""
    stopping = asyncio.ensure_future(stop.wait())
    none_left = asyncio.ensure_future(asyncio.wait(kept))
    try:
        await asyncio.wait([stopping, none_left], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        none_left.cancel()
    return stop.is_set()


async def _either(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class _Front:
    def __init__(self, index: int, command: list[str], fd: int) -> None:
        self.index = index
        self._command = command
        self._fd = fd
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False

    async def keep_running(self) -> None:
        pause = RESTART_AFTER / 2  # doubled before the first wait
        while not self._stopping:
            try:  # a session of its own: Ctrl-C in a terminal reaches the writer only, which stops the fronts in order
                self._process = process = await asyncio.create_subprocess_exec(*self._command, pass_fds=(self._fd,),
                                                                               start_new_session=True)
            except OSError as exc:  # no memory or processes left to fork: try again, less and less often
                pause = min(2 * pause, 60.0)
                log.error("front process %d could not be started (%s); trying again in %.0fs", self.index, exc, pause)
                await asyncio.sleep(pause)
                continue
            if self._stopping:  # stop() came while it was starting
                process.terminate()
            started = time.monotonic()
            code = await process.wait()
            if self._stopping:
                return
            if code == EXIT_OTHER_CODE:
                log.error("front process %d (pid %d) runs other code than this writer (it was upgraded on disk): "
                          "not started again; restart `owp serve` to run the new code", self.index, process.pid)
                return
            # a front that keeps failing as it starts is started again less and less often, up to once a minute
            pause = RESTART_AFTER if time.monotonic() - started > RESTART_LONGEST else min(2 * pause, 60.0)
            log.error("front process %d (pid %d) exited with status %s; starting it again in %.0fs",
                      self.index, process.pid, code, pause)
            await asyncio.sleep(pause)

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(STOPPING):
                await process.wait()
        except TimeoutError:
            log.error("front process %d (pid %d) did not stop within %.0fs; killed", self.index, process.pid,
                      STOPPING)
            process.kill()
            await process.wait()


def serve_front(settings: Settings, fd: int, writer_socket: Path) -> int:
    """One front process: HTTP on the inherited listening socket `fd`, writes through `writer_socket`."""
    from owp_bot.app import create_app
    from owp_bot.cli import freeze_startup_objects

    app = create_app(settings, writer_socket=writer_socket)
    app.on_startup.append(freeze_startup_objects)
    app.cleanup_ctx.append(_with_the_writer)
    web.run_app(app, sock=socket.socket(fileno=fd), shutdown_timeout=10, print=None, access_log=None,
                handle_signals=True, loop=loop_factory(settings.event_loop)())
    link = app[SCHEDULER].writer
    return EXIT_OTHER_CODE if isinstance(link, WriterLink) and link.refused else 0


async def _with_the_writer(app: web.Application) -> AsyncIterator[None]:
    """Send the writer this front's request counters now and then (its GET /metrics sums every front's); and
    when the writer goes away (it stopped, or crashed), stop as on SIGTERM."""
    link = app[SCHEDULER].writer
    assert isinstance(link, WriterLink)

    async def watch() -> None:
        while not link.lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATS_EVERY):
                    await link.lost.wait()
            link.stats(app[METRICS].requests.snapshot())
        log.warning("the writer process went away; this front process stops")
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = asyncio.create_task(watch(), name="owp-front-writer-watch")
    yield
    watcher.cancel()
