"""`issue_comment`: `/owp claim | release | status` lines from humans (never bots, this app included)."""

from __future__ import annotations

from functools import partial

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, is_bot, login_of

router = routing.Router()


@router.register("issue_comment", action="created")
async def comment_created(event: sansio.Event, changes: Changes) -> None:
    comment = event.data["comment"]
    if is_bot(comment["user"]) or is_bot(event.data["sender"]) or comment.get("performed_via_github_app"):
        return
    body = str(comment.get("body") or "")
    if not gh.parse_commands(body):
        return
    repo = str(event.data["repository"]["full_name"])
    number = int(event.data["issue"]["number"])
    login = login_of(comment["user"])
    settings = changes.settings
    changes.add(partial(gh.commands, repo, number, login, body, settings))
