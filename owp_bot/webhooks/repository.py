"""`repository` renamed or transferred: the pool follows the repo to its new name (gh.repo_renamed)."""

from __future__ import annotations

from functools import partial
from typing import Any

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, login_of

router = routing.Router()
MOVES = ("renamed", "transferred")


def former_name(data: dict[str, Any]) -> str | None:
    """The owner/name a rename (`changes.repository.name.from`) or a transfer (`changes.owner.from.organization`
    or `.user`) moved the repo from; None for other actions, or when the payload does not say."""
    try:
        repo, changes = data["repository"], data["changes"]
        if data["action"] == "renamed":
            return f"{repo['owner']['login']}/{changes['repository']['name']['from']}"
        if data["action"] == "transferred":
            owner = changes["owner"]["from"]
            return f"{(owner.get('organization') or owner['user'])['login']}/{repo['name']}"
    except (KeyError, TypeError, AttributeError):
        return None
    return None


async def repository_moved(event: sansio.Event, changes: Changes) -> None:
    former = former_name(event.data)
    if former is None:
        raise ValueError("the repository event does not say the repo's former name (changes)")
    current, change = str(event.data["repository"]["full_name"]), str(event.data["action"])
    actor = gh.actor_of(login_of(event.data["sender"]))
    changes.add(partial(gh.repo_renamed, former, current, change, actor))


for _action in MOVES:
    router.add(repository_moved, "repository", action=_action)
