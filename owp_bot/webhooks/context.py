"""What a webhook handler gets besides the event: the settings, and the list of changes it asks for.

Handlers do no I/O. Each parses its payload and appends a change (a github_operations generator); the
receiver applies all of a delivery's changes together with the delivery record, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from owp_bot.config import Settings
from owp_bot.scheduler.github_operations import Change


@dataclass
class Changes:
    settings: Settings
    items: list[Change] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.items.append(change)


def login_of(user: dict[str, Any]) -> str:
    return str(user["login"])


def is_bot(user: dict[str, Any]) -> bool:
    """Bots (this app included) never drive the pool: GitHub marks them `type: Bot` and `[bot]` logins."""
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")
