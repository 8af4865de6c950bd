"""Bad input always gets a clear problem+json answer that says what to do; nothing is half-applied."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import ADMIN_TOKEN, Pool

PROBLEM = "application/problem+json"


async def problem(pool: Pool, method: str, path: str, status: int, **kwargs: object) -> dict[str, object]:
    response = await pool.http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body = await response.json(content_type=None)
    assert body["status"] == status and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


REGISTER = {"name": "ann", "skills": ["python"], "capacity_points": 3, "max_concurrent_tasks": 1}


async def test_unknown_fields_and_wrong_types_name_the_field(pool: Pool) -> None:
    body = await problem(pool, "POST", "/v1/workers/register", 422, json={**REGISTER, "capacity": 3})
    assert body["errors"] == [{"field": "capacity", "message": "Extra inputs are not permitted"}]
    body = await problem(pool, "POST", "/v1/workers/register", 422, json={**REGISTER, "capacity_points": "lots"})
    assert "capacity_points" in str(body["detail"])
    body = await problem(pool, "POST", "/v1/workers/register", 422, json={**REGISTER, "capacity_points": 0})
    assert "greater than or equal to 1" in str(body["detail"])
    await problem(pool, "POST", "/v1/workers/register", 422, json=["not", "an", "object"])
    body = await problem(pool, "POST", "/v1/workers/register", 422, json={**REGISTER, "capacity_points": True})
    assert body["errors"] == [{"field": "capacity_points",
                               "message": "true is a boolean, and capacity_points takes none"}]
    body = await problem(pool, "POST", "/v1/workers/register", 422, json={**REGISTER, "name": False})
    assert body["errors"] == [{
        "field": "name", "message": 'false is a boolean, and name takes none; to mean the word, quote it: "false"'}]


async def test_malformed_json_wrong_media_type_and_missing_body(pool: Pool) -> None:
    body = await problem(pool, "POST", "/v1/workers/register", 400, data=b"{nope",
                         headers={"Content-Type": "application/json"})
    assert "not valid JSON" in str(body["detail"])
    body = await problem(pool, "POST", "/v1/workers/register", 415, data=b"name=ann",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert "application/json" in str(body["detail"])
    await problem(pool, "POST", "/v1/workers/register", 400)


async def test_oversized_bodies_are_refused(pool: Pool) -> None:
    huge = io.BytesIO(json.dumps({**REGISTER, "name": "x" * 2_000_000}).encode())
    body = await problem(pool, "POST", "/v1/workers/register", 413, data=huge,
                         headers={"Content-Type": "application/json"})
    assert "larger than this server accepts" in str(body["detail"])


async def test_credentials(pool: Pool) -> None:
    body = await problem(pool, "GET", "/v1/work", 401)
    assert "Bearer" in str(body["detail"])
    await problem(pool, "GET", "/v1/work", 401, headers={"Authorization": "Bearer owp_not-a-token"})
    await problem(pool, "GET", "/v1/work", 401, headers={"Authorization": "Basic abc"})
    body = await problem(pool, "PUT", "/v1/repos/acme/api", 401, json={"max_open_prs": 1},
                         headers={"X-Admin-Token": "wrong-token-wrong-token"})
    assert "admin token" in str(body["detail"])
    _, token = await pool.worker()
    await problem(pool, "PUT", "/v1/repos/acme/api", 401, json={"max_open_prs": 1},
                  headers={"Authorization": f"Bearer {token}"})
    await problem(pool, "GET", "/v1/audit/events", 401, headers={"Authorization": f"Bearer {token}"})


async def test_unknown_ids_and_other_workers_things(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    offer = (await pool.offers(ann))["offers"][0]
    ann_auth = {"Authorization": f"Bearer {ann}"}
    bob_auth = {"Authorization": f"Bearer {bob}"}
    await problem(pool, "POST", f"/v1/work/offers/{offer['offer_id']}/accept", 404, headers=bob_auth)
    await problem(pool, "POST", f"/v1/work/offers/{offer['offer_id']}/reject", 404, headers=bob_auth,
                  json={"reason": "other"})
    await problem(pool, "POST", "/v1/work/offers/o_missing/accept", 404, headers=ann_auth)
    lease = await pool.accept(ann, offer["offer_id"])
    await problem(pool, "POST", f"/v1/leases/{lease['lease_id']}/renew", 404, headers=bob_auth)
    await problem(pool, "POST", f"/v1/tasks/{task}/status", 403, headers=bob_auth, json={"status": "released"})
    body = await problem(pool, "GET", "/v1/tasks/t_missing", 404, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert "GET /v1/tasks" in str(body["detail"])
    await problem(pool, "GET", "/v1/workers/w_missing", 404)
    body = await problem(pool, "GET", "/v1/repos/acme/nothing", 404)
    assert "PUT /v1/repos/acme/nothing" in str(body["detail"])
    await problem(pool, "POST", f"/v1/work/offers/{offer['offer_id']}/accept", 409, headers=ann_auth)


async def test_task_for_a_repo_not_in_the_pool(pool: Pool) -> None:
    body = await problem(pool, "POST", "/v1/tasks", 404, json={"repo": "acme/api", "title": "x"},
                         headers={"X-Admin-Token": ADMIN_TOKEN})
    assert "PUT /v1/repos/acme/api" in str(body["detail"])


async def test_unknown_routes_methods_and_query_parameters(pool: Pool) -> None:
    await problem(pool, "GET", "/v1/nothing-here", 404)
    await problem(pool, "DELETE", "/v1/work", 405)
    body = await problem(pool, "GET", "/v1/repos", 400, params={"bogus": "1"})
    assert "bogus" in str(body["detail"])
    await problem(pool, "GET", "/v1/tasks", 422, params={"limit": "0"})
    await problem(pool, "GET", "/v1/tasks", 422, params={"status": "done"})


@pytest.mark.parametrize("body", [{"max_open_prs": -1}, {"max_open_prs": 2, "lease_ttl": "forever"},
                                  {"max_open_prs": 2, "offer_ttl": 0}])
async def test_repo_settings_are_validated(pool: Pool, body: dict[str, object]) -> None:
    await problem(pool, "PUT", "/v1/repos/acme/api", 422, json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
    await problem(pool, "GET", "/v1/repos/acme/api", 404)  # nothing half-created


async def test_repo_durations_and_names(pool: Pool) -> None:
    repo = await pool.repo(max_open_prs=2, lease_ttl="2h", offer_ttl=90)
    assert (repo["lease_ttl_seconds"], repo["offer_ttl_seconds"]) == (7200, 90)
    await problem(pool, "PUT", "/v1/repos/acme/a%20b", 422, json={"max_open_prs": 1},
                  headers={"X-Admin-Token": ADMIN_TOKEN})


async def test_an_issue_number_past_32_bits_is_a_422_not_a_500(pool: Pool) -> None:
    await pool.repo()
    body = await problem(pool, "POST", "/v1/tasks", 422, headers={"X-Admin-Token": ADMIN_TOKEN},
                         json={"repo": "acme/api", "title": "x", "issue_number": 2**31})
    assert "issue_number" in str(body["detail"])


@pytest.mark.parametrize("ttl", [{"lease_ttl": 10**400}, {"offer_ttl": 10**12}, {"offer_ttl": "9" * 400},
                                 {"lease_ttl": "400d"}])
async def test_a_repo_ttl_past_a_year_is_a_422_and_never_breaks_offers(pool: Pool, ttl: dict[str, object]) -> None:
    """A TTL too long for a date (an offer expiring in the year 33714) would turn every offer of the repo's tasks
    into a 500; and an int too large for a float was a 500 itself."""
    body = await problem(pool, "PUT", "/v1/repos/acme/slow", 422, headers={"X-Admin-Token": ADMIN_TOKEN},
                         json={"max_open_prs": 1, **ttl})
    assert "365d" in str(body["detail"]) or "less than or equal" in str(body["detail"]), body
    await problem(pool, "GET", "/v1/repos/acme/slow", 404)
    assert (await pool.repo("acme/slow", offer_ttl="365d"))["offer_ttl_seconds"] == 365 * 86400
    await pool.task(repo="acme/slow")
    _, ann = await pool.worker("ann")
    assert len((await pool.offers(ann))["offers"]) == 1  # an offer a year long still has a date


async def test_a_pr_url_whose_number_cannot_exist_is_a_422_not_a_500(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    await pool.work(ann)
    body = await problem(pool, "POST", f"/v1/tasks/{task}/status", 422, headers={"Authorization": f"Bearer {ann}"},
                         json={"status": "pr_opened",
                               "artifact": {"pr_url": "https://github.com/acme/api/pull/" + "9" * 11}})
    assert "pr_url" in str(body["detail"])
    assert (await pool.get_task(task))["status"] == "leased"


async def test_an_unknown_query_parameter_is_a_400_on_every_endpoint(pool: Pool) -> None:
    """docs/protocol.md, Errors: 400 for an unknown query parameter, whether or not the endpoint takes others."""
    admin = {"X-Admin-Token": ADMIN_TOKEN}
    for path in ("/v1/repos", "/v1/tasks", "/v1/workers", "/v1/audit/events", "/v1/analytics/pool"):
        body = await problem(pool, "GET", path, 400, headers=admin, params={"bogus": "1"})
        assert "bogus" in str(body["detail"])
    await problem(pool, "GET", "/v1/tasks", 422, headers=admin, params={"limit": "0"})  # a known one, invalid
