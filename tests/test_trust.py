"""Trust tiers: min_trust and sensitive areas keep work from lower tiers, with their own reason; admins change
tiers with an audited reason; the optional automatic promotion/demotion rules."""

from __future__ import annotations

import pytest

from owp_bot.config import Settings
from tests.conftest import Pool
from tests.test_reputation import deliver, let_a_lease_expire


async def trust(pool: Pool, worker_id: str, tier: str, reason: str = "known contributor", expect: int = 200) -> dict:
    return await pool.call("POST", f"/v1/workers/{worker_id}/trust-tier", admin=True, expect=expect,
                           json={"tier": tier, "reason": reason})


async def test_sensitive_area_needs_trusted_with_its_own_reason(pool: Pool) -> None:
    repo = await pool.repo("acme/api", sensitive_areas=["Auth", "billing"])
    assert repo["sensitive_areas"] == ["auth", "billing"]
    task = await pool.task("rotate signing keys", area="auth")
    worker_id, token = await pool.worker()

    answer = await pool.offers(token)
    assert answer["offers"] == []
    reasons = answer["why_none"]["reasons"]
    assert [(r["reason"], r["count"]) for r in reasons] == [("sensitive_area", 1)]
    assert "trusted" in reasons[0]["message"] and "basic" in reasons[0]["message"]

    changed = await trust(pool, worker_id, "trusted", "two years on the auth module")
    assert changed["trust_tier"] == "trusted"
    assert [o["task_id"] for o in (await pool.offers(token))["offers"]] == [task]

    [event] = await pool.events(type="worker.trust_tier")
    assert (event["actor"], event["target"]) == ("admin", worker_id)
    assert event["details"] == {"worker_id": worker_id, "tier": "trusted", "previous": "basic",
                                "reason": "two years on the auth module"}


async def test_other_areas_of_a_sensitive_repo_stay_open(pool: Pool) -> None:
    await pool.repo("acme/api", sensitive_areas=["auth"])
    task = await pool.task("fix docs typo", area="docs")
    _, token = await pool.worker()
    assert [o["task_id"] for o in (await pool.offers(token))["offers"]] == [task]


async def test_min_trust_keeps_untrusted_workers_out(pool: Pool) -> None:
    await pool.repo()
    await pool.task("needs basic")
    worker_id, token = await pool.worker()
    await trust(pool, worker_id, "untrusted", "spam PRs")
    reasons = (await pool.offers(token))["why_none"]["reasons"]
    assert [(r["reason"], r["count"]) for r in reasons] == [("insufficient_trust", 1)]
    assert "untrusted" in reasons[0]["message"]


async def test_a_demoted_worker_loses_the_offers_it_no_longer_fits_and_keeps_its_leases(pool: Pool) -> None:
    """An offer is a reservation the worker has not accepted: lowered below a task's min_trust, or below trusted for
    a sensitive area, the worker loses that offer and the task is back in the pool; a lease is work in progress and
    stays, and an offer that still fits stays offered."""
    await pool.repo(max_open_prs=10, sensitive_areas=["auth", "billing"])
    worker_id, token = await pool.worker(capacity_points=10, max_concurrent_tasks=4)
    await trust(pool, worker_id, "trusted")
    leased = await pool.task("in billing", area="billing")
    [lease] = (await pool.work(token))["leases"]
    sensitive = await pool.task("in auth", area="auth")
    guarded = await pool.task("needs trusted", min_trust="trusted")
    plain = await pool.task("plain")
    offers = {o["task_id"]: o["offer_id"] for o in (await pool.offers(token))["offers"]}
    assert offers.keys() == {sensitive, guarded, plain}

    await trust(pool, worker_id, "basic", "a sloppy auth change")
    assert {t: (await pool.get_task(t))["status"] for t in (leased, sensitive, guarded, plain)} == {
        leased: "leased", sensitive: "ready", guarded: "ready", plain: "offered"}
    revoked = {e["target"]: e for e in await pool.events(type="offer.revoked")}
    assert {t: (e["actor"], e["details"]["offer_id"], e["details"]["reason"]) for t, e in revoked.items()} == {
        sensitive: ("admin", offers[sensitive], "sensitive_area"),
        guarded: ("admin", offers[guarded], "insufficient_trust")}
    requeued = {e["target"]: e["details"]["reason"] for e in await pool.events(type="task.requeued")}
    assert requeued == {sensitive: "sensitive_area", guarded: "insufficient_trust"}
    assert not await pool.events(type="lease.revoked")
    assert "revoked" in (await pool.accept(token, offers[guarded], expect=409))["detail"]
    held = (await pool.call("GET", "/v1/work/leases", token=token))["leases"]
    assert [h["lease_id"] for h in held] == [lease["lease_id"]]
    await pool.accept(token, offers[plain])


async def test_an_area_made_sensitive_takes_its_offers_from_workers_below_trusted(pool: Pool) -> None:
    """Offers of tasks in an area that becomes sensitive are revoked from workers below trusted; a trusted worker's
    offer, an offer in another area and a lease in that area stay."""
    await pool.repo(max_open_prs=10, area_locks=False)
    ann_id, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    cy_id, cy = await pool.worker("cy")
    await trust(pool, cy_id, "trusted")
    anns = await pool.task("ann's", area="auth")
    [ann_offer] = (await pool.offers(ann))["offers"]
    bobs = await pool.task("bob's", area="auth")
    await pool.work(bob)
    cys = await pool.task("cy's", area="auth")
    await pool.offers(cy)
    docs = await pool.task("docs", area="docs")
    assert [o["task_id"] for o in (await pool.offers(ann))["offers"]] == [anns, docs]

    await pool.repo(max_open_prs=10, area_locks=False, sensitive_areas=["docs"])  # no offer of a basic worker...
    await pool.repo(max_open_prs=10, area_locks=False, sensitive_areas=["docs", "auth"])  # ...but ann's
    assert {t: (await pool.get_task(t))["status"] for t in (anns, bobs, cys, docs)} == {
        anns: "ready", bobs: "leased", cys: "offered", docs: "ready"}
    revoked = {e["target"]: e for e in await pool.events(type="offer.revoked")}
    assert {t: (e["actor"], e["details"]["worker_id"], e["details"]["reason"]) for t, e in revoked.items()} == {
        docs: ("admin", ann_id, "sensitive_area"), anns: ("admin", ann_id, "sensitive_area")}
    assert revoked[anns]["details"]["offer_id"] == ann_offer["offer_id"]
    assert not await pool.events(type="lease.revoked")
    await pool.accept(ann, ann_offer["offer_id"], expect=409)
    assert [r["reason"] for r in (await pool.offers(ann))["why_none"]["reasons"]] == ["sensitive_area"]


async def test_trust_tier_changes_are_admin_only_and_checked(pool: Pool) -> None:
    worker_id, token = await pool.worker()
    await pool.call("POST", f"/v1/workers/{worker_id}/trust-tier", token=token, expect=401,
                    json={"tier": "trusted", "reason": "me"})
    same = await trust(pool, worker_id, "basic", expect=409)
    assert "already basic" in same["detail"]
    await trust(pool, "w_nobody", "trusted", expect=404)
    bad = await pool.call("POST", f"/v1/workers/{worker_id}/trust-tier", admin=True, expect=422,
                          json={"tier": "god", "reason": ""})
    assert {e["field"] for e in bad["errors"]} == {"tier", "reason"}


async def test_automatic_rules_are_off_by_default(pool: Pool) -> None:
    await pool.repo()
    worker_id, token = await pool.worker()
    await deliver(pool, token, "warm-up")
    await pool.repo()  # any later transaction would apply the rules
    assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "basic"
    assert await pool.events(type="worker.trust_tier") == []


class TestAutomaticRules:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(promote_after_merged=1, promote_min_score=55, demote_after_expired=1)

    async def test_merged_work_promotes(self, pool: Pool) -> None:
        await pool.repo()
        worker_id, token = await pool.worker()
        await deliver(pool, token, "warm-up")
        await pool.repo()  # the rules run at the start of the next transaction
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "trusted"
        [event] = await pool.events(type="worker.trust_tier")
        assert event["actor"] == "system"
        assert event["details"]["reason"].startswith("automatic: 1 merged PRs and reputation 66.7")

    async def test_an_expired_lease_demotes(self, pool: Pool) -> None:
        worker_id, _ = await let_a_lease_expire(pool)
        await pool.repo()  # the rules run at the start of the next transaction
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "untrusted"
        [event] = await pool.events(type="worker.trust_tier")
        assert (event["actor"], event["details"]["previous"], event["details"]["tier"]) == (
            "system", "basic", "untrusted")

    async def test_a_demotion_revokes_the_offers_the_worker_no_longer_fits(self, pool: Pool) -> None:
        """The rules demote a worker whose lease expired while it held an offer: the offer goes, as by an admin."""
        await pool.repo(lease_ttl="1m")
        await pool.task("lapses")
        worker_id, token = await pool.worker()
        await pool.work(token)
        offered = await pool.task("offered")
        [offer] = (await pool.offers(token))["offers"]
        pool.clock.advance(120)  # the lease ran out (1 minute); the offer has 3 minutes to go
        await pool.heartbeat(token)
        await pool.repo(lease_ttl="1m")  # lapses the lease, then the rules demote the worker
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "untrusted"
        assert (await pool.get_task(offered))["status"] == "ready"
        [revoked] = await pool.events(type="offer.revoked")
        assert (revoked["actor"], revoked["target"], revoked["details"]["offer_id"], revoked["details"]["reason"]) == (
            "system", offered, offer["offer_id"], "insufficient_trust")
        await pool.accept(token, offer["offer_id"], expect=409)

    async def test_the_rules_weigh_only_evidence_after_an_admins_decision(self, pool: Pool) -> None:
        """An admin who demotes a promoted worker has weighed its merges: the next outcome (here a declined
        offer) must not promote it again on the same evidence; a merge after the decision may."""
        await pool.repo(max_open_prs=10)
        worker_id, token = await pool.worker()
        await deliver(pool, token, "warm-up")
        await pool.repo(max_open_prs=10)
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "trusted"
        await trust(pool, worker_id, "basic", "a sloppy auth change")
        await pool.task("declined")
        await pool.reject(token, (await pool.offers(token))["offers"][0]["offer_id"])  # an outcome: rules run
        await pool.repo(max_open_prs=10)
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "basic"
        await deliver(pool, token, "a merge after the decision")
        await pool.repo(max_open_prs=10)
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "trusted"
        reasons = [e["details"]["reason"] for e in await pool.events(type="worker.trust_tier")]
        assert reasons[-1].startswith("automatic: 1 merged PRs since an admin set the tier")


class TestDefaultTier:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(default_trust_tier="untrusted")

    async def test_new_workers_start_at_the_configured_tier(self, pool: Pool) -> None:
        worker_id, _ = await pool.worker()
        assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["trust_tier"] == "untrusted"
