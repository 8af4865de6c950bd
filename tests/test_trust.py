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
