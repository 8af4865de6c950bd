"""`pull_request`: a PR naming a task (`Closes #12`, branch `owp/<task_id>`) moves it to pr_opened, merged,
or back to ready; other open PRs count against the repo's review budget."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, login_of

router = routing.Router()
ACTIONS = ("opened", "reopened", "edited", "closed")


def pull_ref(data: dict[str, Any]) -> gh.PullRef:
    pr = data["pull_request"]
    return gh.PullRef(
        repo=str(data["repository"]["full_name"]),
        number=int(pr["number"]),
        url=str(pr["html_url"]),
        author=login_of(pr["user"]),
        title=str(pr.get("title") or ""),
        body=str(pr.get("body") or ""),
        head_ref=str(pr["head"]["ref"]),
        state=str(pr["state"]),
        merged=bool(pr.get("merged")),
        created_at=datetime.fromisoformat(str(pr["created_at"])).timestamp() if pr.get("created_at") else None,
    )


async def pull_changed(event: sansio.Event, changes: Changes) -> None:
    pull = pull_ref(event.data)
    actor = gh.actor_of(login_of(event.data["sender"]))
    changes.add(partial(gh.pull_changed, pull, actor))


for _action in ACTIONS:
    router.add(pull_changed, "pull_request", action=_action)
