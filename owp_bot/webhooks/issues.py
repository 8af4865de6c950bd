"""`issues`: an open issue with the ready label is a task; its labels fill the task's fields."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, login_of

router = routing.Router()
ACTIONS = ("opened", "edited", "labeled", "unlabeled", "closed", "reopened")


def issue_ref(data: dict[str, Any]) -> gh.IssueRef:
    issue = data["issue"]
    return gh.IssueRef(
        repo=str(data["repository"]["full_name"]),
        number=int(issue["number"]),
        title=str(issue["title"]),
        url=str(issue["html_url"]),
        labels=tuple(str(label["name"]) for label in issue["labels"]),
        state=str(issue["state"]),
    )


async def issue_changed(event: sansio.Event, changes: Changes) -> None:
    if "pull_request" in event.data["issue"]:
        return  # pull requests are issues too; pulls.py follows them
    issue = issue_ref(event.data)
    actor = gh.actor_of(login_of(event.data["sender"]))
    settings = changes.settings
    changes.add(lambda now: gh.issue_changed(issue, actor, settings, now))


for _action in ACTIONS:
    router.add(issue_changed, "issues", action=_action)
