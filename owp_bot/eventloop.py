"""The event loop `owp serve` and `owp demo` run on: uvloop where it is installed, else asyncio's own.

uvloop (libuv) runs the same asyncio code with cheaper callbacks, sockets and timers; asyncpg's protocol is
written for it. On this project's benchmark it gave 10 to 20% more leases per second for the same CPU
(bench/RESULTS.md). It is a dependency on Linux and macOS; Windows, where it does not exist, gets asyncio.
`OWP_EVENT_LOOP=asyncio` chooses asyncio anyway (to rule the loop out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

CHOICES = ("auto", "uvloop", "asyncio")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str) -> str:
    """`auto` -> the loop it means here; `uvloop` and `asyncio` stay as they are."""
    if choice == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    return choice


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if resolve(choice) == "uvloop" and uvloop_installed():  # else load_settings says it is missing
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop
