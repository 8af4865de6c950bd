"""`pull_request_review`: approvals and change requests on linked PRs, the PR-quality input of reputation."""

from __future__ import annotations

from functools import partial

from gidgethub import routing, sansio

from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks.context import Changes, is_bot, login_of

router = routing.Router()


@router.register("pull_request_review", action="submitted")
async def review_submitted(event: sansio.Event, changes: Changes) -> None:
    review = event.data["review"]
    if is_bot(review["user"]):
        return
    repo = str(event.data["repository"]["full_name"])
    number, author = int(event.data["pull_request"]["number"]), login_of(event.data["pull_request"]["user"])
    state, reviewer, review_id = str(review["state"]), login_of(review["user"]), int(review["id"])
    changes.add(partial(gh.review_submitted, repo, number, author, state, reviewer, review_id))


@router.register("pull_request_review", action="dismissed")
async def review_dismissed(event: sansio.Event, changes: Changes) -> None:
    repo = str(event.data["repository"]["full_name"])
    number, review_id = int(event.data["pull_request"]["number"]), int(event.data["review"]["id"])
    dismisser = login_of(event.data["sender"])
    changes.add(partial(gh.review_dismissed, repo, number, review_id, dismisser))
