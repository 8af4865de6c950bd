"""`python -m bench.statements serve …`: the pool server, timing every named statement its store runs.

`python -m bench.load --statements` starts the server this way. The numbers cover what happens between two
signals: SIGUSR1 starts counting afresh (the benchmark sends it as the worker loop begins), SIGUSR2 writes
them as JSON to the file named by `OWP_BENCH_STATEMENTS` (as the loop ends). Per statement: how often it ran
and the wall time it took as the store saw it (on PostgreSQL, a round trip and whatever the event loop did
before the store got the answer). Per write transaction (a group of operations): how many ran, how many
operations they held, and their wall time, which over the loop's length is how busy the one writer was.
"(events inserted)" counts one insert per event on SQLite, one per batch of events on PostgreSQL.

It wraps private functions of the stores (owp_bot/scheduler/*_store.py), so it moves with them;
tests/test_bench_smoke.py runs it on both backends.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from owp_bot.scheduler import postgres_store, sqlite_store

ENV = "OWP_BENCH_STATEMENTS"
EVENTS = "(events inserted)"


class Timings:
    def __init__(self) -> None:
        self.reset()

    def reset(self, *_: object) -> None:
        self.since = time.perf_counter()
        self.statements: dict[str, list[float]] = {}  # name -> [count, seconds]
        self.groups = [0, 0, 0.0]  # transactions, operations, seconds

    def add(self, name: str, seconds: float) -> None:
        entry = self.statements.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def dump(self, *_: object) -> None:
        elapsed = time.perf_counter() - self.since
        transactions, operations, seconds = self.groups
        found = {
            "seconds": round(elapsed, 3),
            "statements": {name: {"count": int(n), "ms": round(1000 * s, 1)} for name, (n, s) in
                           sorted(self.statements.items(), key=lambda item: -item[1][1])},
            "transactions": {"count": transactions, "operations": operations, "ms": round(1000 * seconds, 1)},
        }
        Path(os.environ[ENV]).write_text(json.dumps(found, indent=1), encoding="utf-8")


TIMINGS = Timings()


def _timed(name_of: Callable[..., str | None], fn: Callable[..., Any]) -> Callable[..., Any]:
    """Time each call under the name `name_of` gives its arguments (None: not counted)."""
    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        name, started = name_of(*args), time.perf_counter()
        try:
            return fn(*args)
        finally:
            if name is not None:
                TIMINGS.add(name, time.perf_counter() - started)
    return run


def _timed_async(name_of: Callable[..., str | None], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any) -> Any:
        name, started = name_of(*args), time.perf_counter()
        try:
            return await fn(*args)
        finally:
            if name is not None:
                TIMINGS.add(name, time.perf_counter() - started)
    return run


def _group(operations: Callable[..., int], fn: Callable[..., Any], awaited: bool) -> Callable[..., Any]:
    def count(args: tuple[Any, ...], started: float) -> None:
        TIMINGS.groups[0] += 1
        TIMINGS.groups[1] += operations(*args)
        TIMINGS.groups[2] += time.perf_counter() - started

    if awaited:
        @functools.wraps(fn)
        async def run_async(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args)
            finally:
                count(args, started)
        return run_async

    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            count(args, started)
    return run


def install() -> None:
    sqlite_store._execute = _timed(lambda conn, stmt: stmt.name, sqlite_store._execute)
    sqlite_store._emit = _timed(lambda conn, event: EVENTS, sqlite_store._emit)
    sqlite_store._write_group = _group(lambda conn, makers, prelude: len(makers), sqlite_store._write_group, False)
    tx = postgres_store._Transaction
    tx._execute = _timed_async(lambda self, stmt: stmt.name, tx._execute)  # type: ignore[method-assign]
    tx.insert_events = _timed_async(  # type: ignore[method-assign]
        lambda self: EVENTS if self._held else None, tx.insert_events)
    store = postgres_store.PostgresStore
    store._write_group = _group(  # type: ignore[method-assign]
        lambda self, makers, prelude: len(makers), store._write_group, True)
    signal.signal(signal.SIGUSR1, TIMINGS.reset)
    signal.signal(signal.SIGUSR2, TIMINGS.dump)


def main() -> int:
    if ENV not in os.environ:
        print(f"set {ENV} to the file the timings go to", file=sys.stderr)
        return 2
    install()
    from owp_bot.cli import main as owp

    return owp(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
