"""Read-only answers for a worker's own tool: who am I, and what do I hold (taking nothing new)."""

from __future__ import annotations

from tests.conftest import Pool


async def test_who_am_i_and_my_leases_take_no_new_work(pool: Pool) -> None:
    await pool.repo()
    await pool.task("one")
    worker_id, token = await pool.worker("ann", skills=["Python"], capacity_points=3)
    me = await pool.call("GET", "/v1/workers/me", token=token)
    assert (me["worker_id"], me["name"], me["skills"], me["tasks_in_use"]) == (worker_id, "ann", ["python"], 0)
    assert (await pool.call("GET", "/v1/work/leases", token=token))["leases"] == []  # nothing was leased
    assert (await pool.call("GET", "/v1/tasks", params={"status": "ready"}))["tasks"] != []
    leased = (await pool.work(token))["leases"]
    held = await pool.call("GET", "/v1/work/leases", token=token)
    assert held == {"worker_id": worker_id, "leases": leased}
    await pool.call("GET", "/v1/workers/me", expect=401)
    await pool.call("GET", "/v1/work/leases", admin=True, expect=401)
