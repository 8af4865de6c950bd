"""The store seam: domain operations are sans-I/O generators that yield named SQL statements.

An operation (see operations.py) is written once, as plain Python that yields `Stmt` and `Emit`
values and receives their results. A backend runs the whole generator inside one transaction: the SQLite
backend synchronously on the event loop's thread (reads on a reader thread), a PostgreSQL backend with one
await per statement. Both group-commit: write operations that wait together share one transaction, and one's
failure never undoes another's (SQLite gives each a savepoint; PostgreSQL, where a savepoint is a round trip,
runs the group again without the operation that failed after writing, which is why `Store.run` takes a
function that makes the operation, not the operation itself). Each backend supplies the text of every named
statement from its own `.sql` file, with positional parameters `?1..?n` (SQLite) or `$1..$n` (PostgreSQL) in
the same order. Where PostgreSQL saves a round trip with a data-modifying `WITH`, the SQLite text may be two
statements, run in order (`sqlite_store.statements_of`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")
Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Stmt:
    name: str
    params: tuple[Any, ...]
    fetch: Literal["one", "all", "count"]


@dataclass(frozen=True, slots=True)
class Emit:
    """Append one event to the log. The answer is None: the event's sequence number is known after commit, in
    the `Event` that `Store.run` returns (PostgreSQL inserts a transaction's events together, see
    postgres_store.py)."""

    ts: float
    type: str
    actor: str
    target: str | None
    repo: str | None
    details: dict[str, Any] = field(default_factory=dict)


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: Any) -> str:
    """JSON without spaces, as events' details are stored and streamed (one encoder: `json.dumps` with separators
    makes a new one each call, twice the time)."""
    return _COMPACT.encode(value)


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: float
    type: str
    actor: str
    target: str | None
    repo: str | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> Event:
        details = row["details"]
        return cls(
            seq=row["seq"], ts=row["ts"], type=row["type"], actor=row["actor"], target=row["target"],
            repo=row["repo"], details=json.loads(details) if isinstance(details, str) else dict(details),
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields (the writer process sends events to its fronts): a third of what a slotted
        dataclass's own pickling costs."""
        return Event, (self.seq, self.ts, self.type, self.actor, self.target, self.repo, self.details)


Op = Generator[Stmt | Emit, Any, T]
# Makes one operation. A store may call it again: on PostgreSQL, when another operation of the same group fails
# after writing, the group's transaction is rolled back and the others are made and run again. So an operation
# changes nothing but the database, and its answer is the one from the run that committed.
MakeOp = Callable[[], Op[T]]
Committed = Callable[[], None]  # what a prelude asks the store to do once its transaction is committed


def one(name: str, *params: Any) -> Stmt:
    """Yield it to get one row (or None)."""
    return Stmt(name, params, "one")


def rows(name: str, *params: Any) -> Stmt:
    """Yield it to get a list of rows."""
    return Stmt(name, params, "all")


def run(name: str, *params: Any) -> Stmt:
    """Yield it to run a statement; the answer is the number of rows it changed."""
    return Stmt(name, params, "count")


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run(self, make_op: MakeOp[T], *, write: bool = True, slow: bool = False,
                  prelude: MakeOp[Committed] | None = None) -> tuple[T, list[Event]]:
        """Run the operation `make_op()` in one transaction; return its value and the events it appended, after
        commit. A write transaction first runs the `prelude` of its first operation that has one (the
        scheduler's: write the buffered heartbeats, lapse what ran out), once for all the operations it groups;
        the prelude answers what to do once that transaction is committed (the store calls it on the event loop's
        thread), and its events go with the first operation that succeeds (see `share_prelude`). `slow`
        marks a write that may take long (a bulk import, pruning the log): a backend keeps it off the event
        loop's thread."""

    async def ready(self) -> bool:
        """The database answers and every migration is applied."""


Outcome = tuple[Any, list[Event]] | Exception


def share_prelude(events: list[Event], outcomes: list[Outcome]) -> bool:
    """Give the prelude's events to the first operation that succeeded, whose caller publishes them with its
    own (they come first in the log). False when none succeeded: then the store rolls the transaction back,
    prelude and all, and the next transaction (or the sweeper) does its work again."""
    for index, outcome in enumerate(outcomes):
        if not isinstance(outcome, Exception):
            outcomes[index] = (outcome[0], events + outcome[1])
            return True
    return False


_NAME = re.compile(r"^--\s*(name|fragment):\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_INCLUDE = re.compile(r"^--\s*include:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(folder: Path) -> dict[str, str]:
    """Read every `*.sql` file of named statements in `folder` (one file per concern: core, github, …).

    Each statement begins with a `-- name: <name>` line; a name may be defined only once across the files.
    A `-- fragment: <name>` is SQL that several statements share: a line `-- include: <name>` in a statement
    (or in another fragment) stands for it.
    """
    queries: dict[str, str] = {}
    fragments: dict[str, str] = {}
    for path in sorted(folder.glob("*.sql")):
        parts = _NAME.split(path.read_text(encoding="utf-8"))
        for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
            if name in queries or name in fragments:
                raise ValueError(f"{path.name}: {name!r} is defined twice")
            (queries if kind == "name" else fragments)[name] = body.strip().rstrip(";")

    def include(match: re.Match[str], within: tuple[str, ...] = ()) -> str:
        name = match.group(1)
        if name not in fragments:
            raise ValueError(f"{folder.name}: no fragment {name!r} to include")
        if name in within:
            raise ValueError(f"{folder.name}: fragment {name!r} includes itself")
        return _INCLUDE.sub(lambda inner: include(inner, (*within, name)), fragments[name])

    return {name: _INCLUDE.sub(include, sql) for name, sql in queries.items()}


def migrations(folder: Path) -> list[tuple[int, str, str]]:
    """Numbered migration files `NNN_name.sql`, in order: (version, name, sql)."""
    found = []
    for file in sorted(folder.glob("*.sql")):
        number, _, name = file.stem.partition("_")
        found.append((int(number), name, file.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations in {folder} are not numbered 1..n without gaps: {versions}")
    return found
