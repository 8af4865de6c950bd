"""GitHub does not deliver in order: a late delivery of an older state of an issue must not undo a newer one."""

from __future__ import annotations

import pytest

from owp_bot.devtools import github_payloads as gp
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler import github_operations as gh
from tests.webhooks.conftest import INSTALLATION_ID, REPO, GitHubWorld, example

TITLE = "Flaky test"


def issues_event(action: str, number: int, labels: list[str], changed: str, updated_at: float) -> gp.Payload:
    """What GitHub sent for a label change: the issue's labels and `updated_at` as of that change."""
    issue = gp.issue(REPO, number, TITLE, labels=labels, updated_at=updated_at)
    return gp.issues_event(
        action, issue, REPO, installation_id=INSTALLATION_ID, changed_label=changed, base=example("issues", action)
    )


@pytest.mark.parametrize("order", ["in order", "reversed"])
async def test_a_late_labeled_delivery_does_not_bring_the_task_back(
    world: GitHubWorld, backend: str, order: str
) -> None:
    """A maintainer adds `area:ci`, then removes `pool:ready` a second later; the first delivery may come last."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue(TITLE)
    task = await world.task_of_issue(number)
    item = fake.issue(REPO, number)
    labelled = issues_event("labeled", number, ["pool:ready", "area:ci"], "area:ci", item.updated_at + 1)
    unlabelled = issues_event("unlabeled", number, ["area:ci"], "pool:ready", item.updated_at + 2)
    item.labels, item.updated_at = ["area:ci"], item.updated_at + 2
    deliveries = [labelled, unlabelled] if order == "in order" else [unlabelled, labelled]
    answers = [await fake.deliver(None, "issues", payload) for payload in deliveries]
    assert all(a.status == 200 for a in answers), [a.answer for a in answers]
    assert (await pool.get_task(task["task_id"]))["status"] == "cancelled"
    if order == "reversed":
        assert "older than" in answers[1].answer["detail"], answers[1].answer
    _, token = await world.online_worker("ann")
    assert (await pool.work(token))["leases"] == []
    # a newer change still counts: the label back, a second later
    await fake.label_issue(REPO, number, "pool:ready")
    assert (await pool.get_task(task["task_id"]))["status"] == "ready"


async def test_a_late_opened_delivery_does_not_create_the_task(world: GitHubWorld, backend: str) -> None:
    """Opened with the label, the label removed a second later; `opened` is delivered last."""
    fake = world.fake
    item = await fake.open_issue(REPO, TITLE, labels=["pool:ready"])  # delivered: the task exists
    [task] = await world.tasks()
    assert task["status"] == "ready"
    unlabelled = issues_event("unlabeled", item.number, [], "pool:ready", item.updated_at + 1)
    assert (await fake.deliver(None, "issues", unlabelled)).status == 200
    opened = fake.deliveries[-2].payload
    again = await fake.deliver(None, "issues", opened)  # GitHub's first delivery failed; its retry comes late
    assert again.status == 200, again.answer
    assert [t["status"] for t in await world.tasks()] == ["cancelled"]


@pytest.mark.parametrize("github_shows", ["labelled", "unlabelled"])
@pytest.mark.parametrize("order", ["removal first", "addition first"])
async def test_two_deliveries_of_one_second_are_settled_by_asking_github(
    world: GitHubWorld, backend: str, order: str, github_shows: str
) -> None:
    """Within one second the label was removed and added (or added and removed): `updated_at` cannot order the
    two deliveries, so the pool applies neither over the other and reads the issue from GitHub."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue(TITLE, "area:ci")
    task = await world.task_of_issue(number)
    item = fake.issue(REPO, number)
    second = item.updated_at + 1
    removal = issues_event("unlabeled", number, ["area:ci"], "pool:ready", second)
    addition = issues_event("labeled", number, ["area:ci", "pool:ready"], "pool:ready", second)
    item.labels = ["area:ci", "pool:ready"] if github_shows == "labelled" else ["area:ci"]
    item.updated_at = second
    for payload in [removal, addition] if order == "removal first" else [addition, removal]:
        delivered = await fake.deliver(None, "issues", payload)
        assert delivered.status == 200, delivered.answer
    assert "reading it from GitHub" in delivered.answer["detail"], delivered.answer
    await world.drain()
    assert fake.calls_to("GET", f"/repos/{REPO}/issues/{number}")
    expected = "ready" if github_shows == "labelled" else "cancelled"
    assert (await pool.get_task(task["task_id"]))["status"] == expected


@pytest.mark.parametrize("fate", ["deleted", "transferred"])
async def test_an_issue_read_from_github_after_it_left_the_repo_changes_no_other_issues_task(
    world: GitHubWorld, backend: str, fate: str
) -> None:
    """Two deliveries of one second disagree, and the issue leaves the repo before the pool reads it: GitHub answers
    410 Gone (deleted), or redirects to the issue in its new repo, under another number (transferred). The read
    is not a failure, and the other repo's issue is never applied as this repo's issue of its number."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue(TITLE)
    task = await world.task_of_issue(number)
    item = fake.issue(REPO, number)
    second = item.updated_at + 1
    removal = issues_event("unlabeled", number, [], "pool:ready", second)
    addition = issues_event("labeled", number, ["pool:ready"], "pool:ready", second)
    for payload in (removal, addition):
        delivered = await fake.deliver(None, "issues", payload)
    assert "reading it from GitHub" in delivered.answer["detail"], delivered.answer
    if fate == "deleted":
        item.deleted = True
    else:
        fake.add_repo("acme/elsewhere", INSTALLATION_ID)
        for title in ("Unrelated", TITLE):
            moved = await fake.open_issue("acme/elsewhere", title, labels=["pool:ready"])
        assert moved.number != number
        item.moved_to = ("acme/elsewhere", moved.number)
    await world.drain()
    assert fake.calls_to("GET", f"/repos/{REPO}/issues/{number}")
    assert [(t["task_id"], t["issue_number"]) for t in await world.tasks()] == [(task["task_id"], number)]
    counts = await pool.app[SCHEDULER].run(gh.outbox_counts, write=False)
    assert "failed" not in counts, counts
