"""`installation` and `installation_repositories`: which installation covers which repo (for its token)."""

from __future__ import annotations

from functools import partial
from typing import Any

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes

router = routing.Router()


def _names(repos: list[dict[str, Any]] | None) -> list[str]:
    return [str(r["full_name"]) for r in repos or []]


def _github_ids(*lists: list[dict[str, Any]] | None) -> list[tuple[int, str]]:
    """(GitHub's repository id, owner/name) of each repo listed with its id."""
    return [(r["id"], str(r["full_name"])) for repos in lists for r in repos or [] if isinstance(r.get("id"), int)]


@router.register("installation")
@router.register("installation_repositories")
async def installation(event: sansio.Event, changes: Changes) -> None:
    data = event.data
    inst, action = data["installation"], str(data["action"])
    installation_id, account = int(inst["id"]), str(inst["account"]["login"])
    if event.event == "installation":
        repos = _names(data.get("repositories"))
        added, removed = ([], repos) if action == "deleted" else (repos, [])
        github_ids = _github_ids(data.get("repositories"))
    else:
        added, removed = _names(data.get("repositories_added")), _names(data.get("repositories_removed"))
        github_ids = _github_ids(data.get("repositories_added"), data.get("repositories_removed"))
    changes.add(partial(gh.installation_changed, installation_id, account, action, added, removed,
                        github_ids=github_ids))
