"""Typed application state: every shared object lives behind one of these keys, none in module globals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from owp_bot.clock import Clock
    from owp_bot.config import Settings
    from owp_bot.events import EventHub
    from owp_bot.scheduler.service import Scheduler
    from owp_bot.scheduler.store import Store

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE: web.AppKey[Store] = web.AppKey("store")
HUB: web.AppKey[EventHub] = web.AppKey("hub")
SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler")
