"""Many clients racing for few tasks over real HTTP: what is granted equals what may be granted."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.conftest import Pool


async def test_many_workers_racing_for_few_tasks_never_share_one(pool: Pool) -> None:
    await pool.repo("acme/api", max_open_prs=5)
    await pool.repo("acme/web", max_open_prs=2)
    tasks = [await pool.task(f"api {i}", repo="acme/api", area=f"a{i % 4}") for i in range(12)]
    tasks += [await pool.task(f"web {i}", repo="acme/web") for i in range(6)]
    tokens = [(await pool.worker(f"w{i}", capacity_points=3, max_concurrent_tasks=2))[1] for i in range(30)]

    async def grab(token: str, by_lease: bool) -> list[str]:
        if by_lease:
            return [lease["task_id"] for lease in (await pool.work(token))["leases"]]
        offers = (await pool.offers(token))["offers"]
        accepted = await asyncio.gather(*(pool.accept(token, o["offer_id"]) for o in offers))
        return [a["task_id"] for a in accepted]

    results = await asyncio.gather(*(grab(t, i % 2 == 0) for i, t in enumerate(tokens)))
    held = [task for found in results for task in found]
    assert len(held) == len(set(held)), f"tasks held twice: {Counter(held).most_common(3)}"
    # acme/api: budget 5 but only 4 areas -> at most 4; acme/web: budget 2
    per_repo = Counter("api" if t in tasks[:12] else "web" for t in held)
    assert per_repo == {"api": 4, "web": 2}
    leases = await pool.events(type="lease.granted")
    assert len(leases) == len(held) == len({e["target"] for e in leases})


async def test_concurrent_accepts_of_one_offer_grant_one_lease(pool: Pool) -> None:
    await pool.repo()
    await pool.task()
    _, token = await pool.worker()
    offer = (await pool.offers(token))["offers"][0]
    answers = await asyncio.gather(*(pool.call("POST", f"/v1/work/offers/{offer['offer_id']}/accept", token=token,
                                               expect=None) for _ in range(10)))
    assert sorted(1 if "lease_id" in a else 0 for a in answers) == [0] * 9 + [1]
    assert all(a["status"] == 409 for a in answers if "lease_id" not in a)
