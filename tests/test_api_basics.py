"""The worker protocol over real HTTP on a real SQLite file: the happy path and its errors."""

from __future__ import annotations

from tests.conftest import Pool


async def test_register_offer_accept_pr_merge(pool: Pool) -> None:
    await pool.repo("acme/api", max_open_prs=2)
    task_id = await pool.task("Rate-limit /login", required_skills=["Python"], estimate_points=3, area="auth")
    worker_id, token = await pool.worker(skills=["python", "SQL"])

    offers = (await pool.offers(token))["offers"]
    assert [o["task_id"] for o in offers] == [task_id]
    lease = await pool.accept(token, offers[0]["offer_id"])
    assert lease["task_id"] == task_id

    assert (await pool.status(task_id, "in_progress", token=token))["status"] == "in_progress"
    done = await pool.status(task_id, "pr_opened", token=token,
                             artifact={"pr_url": "https://github.com/acme/api/pull/7"})
    assert (done["status"], done["pr_number"], done["worker_id"]) == ("pr_opened", 7, worker_id)
    merged = await pool.status(task_id, "merged", admin=True)
    assert merged["status"] == "merged"

    events = (await pool.get_task(task_id))["history"]
    assert [e["type"] for e in events] == ["task.created", "offer.created", "offer.accepted", "lease.granted",
                                           "task.in_progress", "lease.completed", "task.pr_opened", "task.merged"]
    completed = next(e for e in events if e["type"] == "lease.completed")  # one statement with the pr_opened
    assert (completed["details"]["lease_id"], completed["details"]["worker_id"]) == (lease["lease_id"], worker_id)
