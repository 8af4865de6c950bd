"""`issues`: an open issue with the ready label is a task; its labels fill the task's fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, login_of

router = routing.Router()
ACTIONS = ("opened", "edited", "labeled", "unlabeled", "closed", "reopened")
GONE = gh.GONE  # the payload shows the issue as it was (open, labelled); it is not here now


def issue_ref(data: dict[str, Any], *, current: bool = False) -> gh.IssueRef:
    """The issue of a payload (or, `current`, as GitHub's API answers it now: a sync, a refresh)."""
    issue = data["issue"]
    return gh.IssueRef(
        repo=str(data["repository"]["full_name"]),
        number=int(issue["number"]),
        title=str(issue["title"]),
        url=str(issue["html_url"]),
        labels=tuple(str(label["name"]) for label in issue["labels"]),
        state=str(issue["state"]),
        updated_at=datetime.fromisoformat(str(issue["updated_at"])).timestamp(),
        current=current,
    )


async def issue_changed(event: sansio.Event, changes: Changes) -> None:
    if "pull_request" in event.data["issue"]:
        return  # pull requests are issues too; pulls.py follows them
    issue = issue_ref(event.data)
    if event.data["action"] in GONE:
        issue = replace(issue, state=str(event.data["action"]))
    actor = gh.actor_of(login_of(event.data["sender"]))
    settings = changes.settings
    changes.add(partial(gh.issue_changed, issue, actor, settings))


for _action in ACTIONS + GONE:
    router.add(issue_changed, "issues", action=_action)
