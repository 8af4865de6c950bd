-- Named statements of the PostgreSQL backend: the same names as sql/sqlite/core.sql, parameters $1..$n in
-- the same order. Casts (`$2::text`) only where a parameter's type cannot be inferred from its use.

-- Numbered from event_counter: write transactions hold the writers' lock (postgres_store.py), so numbers
-- are allocated in commit order and a rolled-back transaction gives its number back. The PostgreSQL twin
-- inserts a batch (each parameter an array, one element per event, in order) and answers the first number;
-- it notifies the other replicas with the last, which PostgreSQL delivers with the COMMIT.
-- name: event_insert
-- mirrors sqlite 8c966040ccbb
WITH counter AS (
  UPDATE event_counter SET seq = seq + cardinality($1::float8[]) RETURNING seq - cardinality($1::float8[]) AS before
), inserted AS (
  INSERT INTO events (seq, ts, type, actor, target, repo, details)
  SELECT counter.before + b.n, b.ts, b.type, b.actor, b.target, b.repo, b.details
  FROM counter, unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS b(ts, type, actor, target, repo, details, n)
)
SELECT before + 1 AS first, pg_notify('owp_events.' || md5(current_schema()), (before + cardinality($1::float8[]))::text)
FROM counter;

-- name: events_page
-- mirrors sqlite f67503d2ac04
SELECT seq, ts, type, actor, target, repo, details FROM events
WHERE seq > $1
  AND ($2::text IS NULL OR type = $2::text
       OR (right($2::text, 2) = '.*' AND type LIKE left($2::text, -1) || '%'))
  AND ($3::text IS NULL OR actor = $3::text)
  AND ($4::text IS NULL OR target = $4::text)
  AND ($5::text IS NULL OR repo = $5::text)
  AND ($6::float8 IS NULL OR ts >= $6::float8)
  AND ($7::float8 IS NULL OR ts < $7::float8)
ORDER BY seq LIMIT $8;

-- The last number handed out (all of them are committed: see event_insert).
-- name: events_last_seq
-- mirrors sqlite 2fa1bdd46d0c
SELECT seq FROM event_counter;

-- name: events_for_target
-- mirrors sqlite 127dea31d315
SELECT seq, ts, type, actor, target, repo, details FROM events WHERE target = $1 ORDER BY seq LIMIT $2;

-- ---------------------------------------------------------------- workers

-- name: worker_insert
-- mirrors sqlite 5920d71e481b
INSERT INTO workers (id, name, github_handle, skills, capacity_points, max_concurrent_tasks, status, note,
                     trust_tier, token_hash, last_heartbeat, created_at)
VALUES ($1, $2, $3, $4, $5, $6, 'idle', NULL, $7, $8, $9, $9);

-- name: worker_get
-- mirrors sqlite 496f096b0ad2
SELECT * FROM workers WHERE id = $1;

-- name: worker_by_token
-- mirrors sqlite 9dd854e8b78d
SELECT id FROM workers WHERE token_hash = $1;

-- name: worker_by_handle
-- mirrors sqlite e8dd5b72e43a
SELECT * FROM workers WHERE lower(github_handle) = lower($1) ORDER BY created_at LIMIT 1;

-- name: worker_load
-- mirrors sqlite 09324a82ffcc
SELECT count(*) AS tasks, coalesce(sum(estimate_points), 0) AS points FROM tasks
WHERE worker_id = $1 AND status IN ('offered', 'leased', 'in_progress', 'blocked');

-- name: worker_claimant
-- mirrors sqlite 2095eb9c008a
SELECT w.*,
  (SELECT count(*) FROM leases l WHERE l.worker_id = w.id AND l.state = 'active') AS leases_active,
  (SELECT count(*) FROM offers o WHERE o.worker_id = w.id AND o.state = 'pending') AS offers_pending,
  (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id
     AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS tasks_in_use,
  (SELECT coalesce(sum(t.estimate_points), 0) FROM tasks t WHERE t.worker_id = w.id
     AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS points_in_use,
  $3::int = 1 AND EXISTS (  -- a rival matters only while some urgent task is in its head start (the newest of
    SELECT 1 FROM json_array_elements_text($4::text::json) p  -- each urgent priority, at the end of tasks_ready_urgent)
    WHERE (SELECT max(t.updated_at) FROM tasks t WHERE t.status = 'ready' AND t.priority = p::int) > $5::float8
  ) AND EXISTS (
    SELECT 1 FROM workers r
    WHERE r.status NOT IN ('offline', 'paused') AND r.reputation > w.reputation AND r.last_heartbeat >= $2::float8
      AND r.id <> w.id
      AND (SELECT count(*) FROM tasks h WHERE h.worker_id = r.id
             AND h.status IN ('offered', 'leased', 'in_progress', 'blocked')) < r.max_concurrent_tasks
      AND (SELECT coalesce(sum(h.estimate_points), 0) FROM tasks h WHERE h.worker_id = r.id
             AND h.status IN ('offered', 'leased', 'in_progress', 'blocked')) < r.capacity_points) AS rival,
  $3::int = 1 AND EXISTS (  -- the oldest ready task of each urgent priority, at the head of tasks_ready_urgent:
    SELECT 1 FROM json_array_elements_text($4::text::json) p  -- a plan that cannot turn into a scan of tasks
    WHERE (SELECT min(t.updated_at) FROM tasks t WHERE t.status = 'ready' AND t.priority = p::int) <= $5::float8
  ) AS urgent_settled
FROM workers w WHERE w.id = $1;

-- name: workers_status_of
-- mirrors sqlite efd6fbda96be
SELECT id, status, last_heartbeat FROM workers WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb));

-- name: workers_heartbeat
-- mirrors sqlite 94f1a14b5d1b
UPDATE workers SET last_heartbeat = b.ts, status = b.status, note = b.note
FROM jsonb_to_recordset($1::jsonb) AS b(id text, ts float8, status text, note text) WHERE workers.id = b.id;

-- name: workers_stale
-- mirrors sqlite 594db74571f0
SELECT id, status FROM workers WHERE status <> 'offline' AND last_heartbeat < $1;

-- name: worker_set_offline
-- mirrors sqlite dc83896b7069
UPDATE workers SET status = 'offline',
  offline_holding = (EXISTS (SELECT 1 FROM leases l WHERE l.worker_id = $1 AND l.state = 'active'))::int
WHERE id = $1;

-- name: workers_offline_released
-- mirrors sqlite 2b7e768a1d7a
UPDATE workers SET offline_holding = 0 WHERE status = 'offline' AND offline_holding = 1 AND last_heartbeat < $1;

-- name: workers_list
-- mirrors sqlite 16615742ade5
SELECT w.*,
       (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id
          AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS tasks_in_use,
       (SELECT coalesce(sum(t.estimate_points), 0) FROM tasks t WHERE t.worker_id = w.id
          AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS points_in_use
FROM workers w WHERE w.id > $1 ORDER BY w.id LIMIT $2;

-- ---------------------------------------------------------------- repos

-- name: repo_get
-- mirrors sqlite 42be98410f79
SELECT r.*, (SELECT coalesce(json_agg(a.area), '[]')::text FROM area_locks a WHERE a.repo = r.id) AS locked_areas
FROM repos r WHERE r.id = $1;

-- name: repos_get
-- mirrors sqlite 625858a75b41
SELECT r.*, (SELECT coalesce(json_agg(a.area), '[]')::text FROM area_locks a WHERE a.repo = r.id) AS locked_areas
FROM repos r WHERE r.id IN (SELECT jsonb_array_elements_text($1::jsonb));

-- name: repo_insert
-- mirrors sqlite 73b432da75f5
INSERT INTO repos (id, max_open_prs, area_locks, lease_ttl, offer_ttl, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6);

-- name: repo_update
-- mirrors sqlite b044701a64e9
UPDATE repos SET max_open_prs = $2, area_locks = $3, lease_ttl = $4, offer_ttl = $5, updated_at = $6
WHERE id = $1;

-- name: repos_list
-- mirrors sqlite 9dc9fab604c1
SELECT * FROM repos ORDER BY id;

-- name: repo_counts
-- mirrors sqlite d45f46410867
SELECT status, count(*) AS n FROM tasks WHERE repo = $1 GROUP BY status;

-- ---------------------------------------------------------------- area locks

-- name: area_locks_clear_repo
-- mirrors sqlite 1bc82a1da4e0
DELETE FROM area_locks WHERE repo = $1;

-- name: area_locks_rebuild_repo
-- mirrors sqlite 443cfb59ac3a
INSERT INTO area_locks (repo, area, task_id)
SELECT DISTINCT ON (area) repo, area, id FROM tasks
WHERE repo = $1 AND area IS NOT NULL
  AND status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
ORDER BY area, created_at
ON CONFLICT DO NOTHING;

-- ---------------------------------------------------------------- tasks

-- name: task_insert
-- mirrors sqlite bbfe63569d1b
INSERT INTO tasks (id, repo, external_key, title, url, issue_number, estimate_points, required_skills, area,
                   priority, min_trust, status, source, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'ready', $12, $13, $13);

-- name: task_skill_insert
-- mirrors sqlite b512027fa7b3
INSERT INTO task_skills (task_id, skill) VALUES ($1, $2);

-- name: task_skills_clear
-- mirrors sqlite c7908840663c
DELETE FROM task_skills WHERE task_id = $1;

-- name: task_get
-- mirrors sqlite e72230977310
SELECT * FROM tasks WHERE id = $1;

-- name: task_of_report
-- mirrors sqlite e5fe0c791ff0
SELECT t.*, g.installation_id FROM tasks t LEFT JOIN gh_repos g ON g.repo = t.repo WHERE t.id = $1;

-- name: task_by_key
-- mirrors sqlite 5c58132ccdd8
SELECT * FROM tasks WHERE repo = $1 AND external_key = $2;

-- name: task_of_issue
-- mirrors sqlite 57e07e3f7d55
SELECT * FROM tasks WHERE repo = $1 AND issue_number = $2 AND source = 'github';

-- name: task_update_fields
-- mirrors sqlite 24b678eeb836
UPDATE tasks SET title = $2, url = $3, issue_number = $4, estimate_points = $5, required_skills = $6,
                 area = $7, priority = $8, min_trust = $9, updated_at = $10
WHERE id = $1;

-- name: task_set_status
-- mirrors sqlite d5fdcc121770
UPDATE tasks SET status = $2, worker_id = $3, updated_at = $4,
  pr_url = coalesce($5::text, pr_url), pr_number = CASE WHEN $5::text IS NULL THEN pr_number ELSE $6 END
WHERE id = $1 RETURNING *;

-- name: task_complete_lease
-- mirrors sqlite 01f2ca6b0f6f
WITH lease AS (
  UPDATE leases SET state = 'completed', ended_at = $4 WHERE task_id = $1 AND state = 'active'
  RETURNING id, worker_id
)
UPDATE tasks SET status = $2, worker_id = $3, updated_at = $4,
  pr_url = coalesce($5::text, pr_url), pr_number = CASE WHEN $5::text IS NULL THEN pr_number ELSE $6 END
WHERE id = $1 RETURNING tasks.*, (SELECT id FROM lease) AS lease_id, (SELECT worker_id FROM lease) AS lease_worker_id;

-- name: task_report_held
-- mirrors sqlite b6555c8fe3de
WITH held AS (
  SELECT t.id, t.status, g.installation_id FROM tasks t LEFT JOIN gh_repos g ON g.repo = t.repo
  WHERE t.id = $1 AND t.worker_id = $2 AND t.status IN ('leased', 'in_progress', 'blocked')
), lease AS (
  UPDATE leases SET state = 'completed', ended_at = $4
  WHERE $3 = 'pr_opened' AND task_id = (SELECT id FROM held) AND state = 'active'
  RETURNING id, worker_id
)
UPDATE tasks SET status = $3, updated_at = $4,
  pr_url = coalesce($5::text, pr_url), pr_number = CASE WHEN $5::text IS NULL THEN pr_number ELSE $6 END
FROM held WHERE tasks.id = held.id
RETURNING tasks.*, held.status AS previous, held.installation_id, (SELECT id FROM lease) AS lease_id,
  (SELECT worker_id FROM lease) AS lease_worker_id;

-- name: tasks_list
-- mirrors sqlite 353578159724
SELECT * FROM tasks t
WHERE t.id > $1
  AND ($2::text IS NULL OR t.repo = $2::text)
  AND ($3::text IS NULL OR t.status = $3::text)
  AND ($4::text IS NULL OR t.area = $4::text)
  AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM task_skills s WHERE s.task_id = t.id AND s.skill = $5::text))
  AND ($6::text IS NULL OR t.worker_id = $6::text)
ORDER BY t.id LIMIT $7;

-- fragment: task_fits
-- Whether ready task t of repo r fits this worker now (sqlite/core.sql says what each parameter is).
-- Each NOT EXISTS that reads a table ends in OFFSET 0, which keeps PostgreSQL from making it an anti join: a
-- subplan is asked only of the tasks that reach it, one at a time, so a walk in order stops at the first that fits.
-- As (hash) anti joins the generic plan judged all 512 tasks of ready_candidate's first way, then sorted them: 4.1 ms
-- in EXPLAIN ANALYZE for an answer among the first few (bench/RESULTS.md, seventeenth session).
t.estimate_points <= $1
  AND t.min_trust <= $2
  AND r.in_flight + r.external_open_prs < r.max_open_prs
  AND NOT EXISTS (SELECT 1 FROM area_locks a WHERE a.repo = t.repo AND a.area = t.area OFFSET 0)
  AND NOT EXISTS (SELECT 1 FROM task_skills s WHERE s.task_id = t.id
                    AND s.skill NOT IN (SELECT json_array_elements_text($3::text::json)) OFFSET 0)
  AND NOT EXISTS (SELECT 1 FROM offers o
                    WHERE o.worker_id = $4 AND o.task_id = t.id AND o.state = 'rejected' AND o.resolved_at > $5
                  OFFSET 0)
  AND ($2 >= 2 OR t.area IS NULL
       OR NOT EXISTS (SELECT 1 FROM json_array_elements_text(r.sensitive_areas::json) j WHERE j = t.area))
  AND (t.priority < $6 OR t.updated_at <= $7::float8 OR $8::int = 0)

-- fragment: ready_candidate
-- The best ready task this worker may take, with its repo, found as on SQLite (sqlite/core.sql): among the first
-- 512 ready tasks in order, or else as the best of each repo with room in its review budget: among its first 32
-- ready tasks, or else by the trust tiers and skill lists the worker fits, or else by walking the repo whole. The
-- LIMIT above UNION ALL stops at the first part's row: the second part runs only when the first found nothing.
(SELECT
-- include: candidate_columns
 FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority, created_at
       FROM tasks WHERE status = 'ready' AND priority < $9
       ORDER BY priority DESC, created_at, id LIMIT 512) t
 -- a nested loop in the subquery's order, to stop at the first that fits (OFFSET 0: see task_fits)
 CROSS JOIN LATERAL (SELECT * FROM repos WHERE repos.id = t.repo OFFSET 0) r
 WHERE
-- include: task_fits
 ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1)
UNION ALL
(WITH RECURSIVE near(repo, id) AS (
   SELECT r.id, (SELECT t.id FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority, created_at
                                   FROM tasks WHERE repo = r.id AND status = 'ready' AND priority < $9
                                   ORDER BY priority DESC, created_at, id LIMIT 32) t
                 WHERE
-- include: task_fits
                 ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1)
   FROM repos r WHERE r.in_flight + r.external_open_prs < r.max_open_prs
     -- as on SQLite: only where more than the 512 of the first part are ready
     AND (SELECT 1 FROM tasks WHERE status = 'ready' AND priority < $9 LIMIT 1 OFFSET 512) IS NOT NULL),
 kinds(repo, trust, skills, hops) AS (
   SELECT near.repo, tier, (SELECT k.required_skills FROM tasks k
                            WHERE k.repo = near.repo AND k.status = 'ready' AND k.min_trust = tier
                            ORDER BY k.required_skills LIMIT 1), 1
   FROM near JOIN (VALUES (0), (1), (2)) v(tier) ON tier <= $2  -- the trust tiers (models.TrustTier)
   WHERE near.id IS NULL  -- and the repo has more than the 32 near looked at:
     AND (SELECT 1 FROM tasks WHERE repo = near.repo AND status = 'ready' AND priority < $9
          ORDER BY priority DESC, created_at, id LIMIT 1 OFFSET 32) IS NOT NULL
   UNION ALL
   SELECT kinds.repo, kinds.trust, (SELECT k.required_skills FROM tasks k
                                    WHERE k.repo = kinds.repo AND k.status = 'ready' AND k.min_trust = kinds.trust
                                      AND k.required_skills > kinds.skills
                                    ORDER BY k.required_skills LIMIT 1), kinds.hops + 1
   FROM kinds WHERE kinds.skills IS NOT NULL AND kinds.hops < 64),
 heads(repo, trust, skills, id) AS (
   SELECT r.id, kinds.trust, kinds.skills,
          (SELECT t.id FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority, created_at
                             FROM tasks WHERE repo = r.id AND status = 'ready' AND min_trust = kinds.trust
                               AND required_skills = kinds.skills AND priority < $9
                             ORDER BY priority DESC, created_at, id LIMIT 32) t
           WHERE
-- include: task_fits
           ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1)
   FROM kinds JOIN repos r ON r.id = kinds.repo
   WHERE kinds.skills IS NOT NULL AND kinds.hops < 64
     AND NOT EXISTS (SELECT 1 FROM json_array_elements_text(kinds.skills::json) j
                     WHERE j NOT IN (SELECT json_array_elements_text($3::text::json)))),
 deep(repo) AS (  -- as on SQLite: walked whole, in order
   SELECT repo FROM heads
   WHERE id IS NULL AND (SELECT 1 FROM tasks WHERE repo = heads.repo AND status = 'ready' AND min_trust = heads.trust
                           AND required_skills = heads.skills AND priority < $9
                         ORDER BY priority DESC, created_at, id LIMIT 1 OFFSET 32) IS NOT NULL
   UNION SELECT repo FROM kinds WHERE hops = 64 AND skills IS NOT NULL),
 found(id) AS (
   SELECT id FROM near WHERE id IS NOT NULL
   UNION ALL
   SELECT id FROM heads WHERE id IS NOT NULL AND repo NOT IN (SELECT repo FROM deep)
   UNION ALL
   SELECT t.id FROM deep JOIN repos r ON r.id = deep.repo CROSS JOIN LATERAL (
     SELECT t.id FROM tasks t
     WHERE t.repo = r.id AND t.status = 'ready' AND t.priority < $9 AND
-- include: task_fits
     ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1) t)
 SELECT
-- include: candidate_columns
 -- each found task read by its key (LIMIT 1 keeps the planner from sorting every task to join them in order)
 FROM (SELECT t.id, t.repo FROM found CROSS JOIN LATERAL (
         SELECT id, repo, priority, created_at FROM tasks WHERE tasks.id = found.id LIMIT 1) t
       ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1) t
 JOIN repos r ON r.id = t.repo)
LIMIT 1

-- fragment: candidate_columns
-- The candidate task t and its repo r as ready_candidate returns them.
t.id AS candidate_id, r.max_open_prs AS repo_max_open_prs, r.area_locks AS repo_area_locks,
  r.lease_ttl AS repo_lease_ttl, r.offer_ttl AS repo_offer_ttl, r.in_flight AS repo_in_flight,
  r.external_open_prs AS repo_external_open_prs, r.sensitive_areas AS repo_sensitive_areas,
  (SELECT coalesce(json_agg(a.area), '[]')::text FROM area_locks a WHERE a.repo = r.id) AS repo_locked_areas

-- name: offer_next
-- mirrors sqlite 624d64fd170f
-- One round trip: every part runs on one snapshot, so `candidate` holds the repo as it was before.
WITH candidate AS (
-- include: ready_candidate
), offer AS (
  INSERT INTO offers (id, task_id, worker_id, state, created_at, expires_at)
  SELECT $10, candidate_id, $4, 'pending', $11::float8, $11::float8 + coalesce(repo_offer_ttl, $12::float8)
  FROM candidate
  RETURNING expires_at
)
UPDATE tasks SET status = 'offered', worker_id = $4, updated_at = $11::float8
FROM candidate WHERE tasks.id = candidate.candidate_id
RETURNING tasks.*, candidate.*, $10::text AS offer_id, (SELECT expires_at FROM offer) AS expires_at;

-- name: lease_next
-- mirrors sqlite 3726abd1cfdc
WITH candidate AS (
-- include: ready_candidate
), lease AS (
  INSERT INTO leases (id, task_id, worker_id, state, granted_at, expires_at, max_expires_at)
  SELECT $10, candidate_id, $4, 'active', $11::float8,
         LEAST($11::float8 + coalesce(repo_lease_ttl, $12::float8), $13::float8), $13::float8
  FROM candidate
  RETURNING expires_at
)
UPDATE tasks SET status = 'leased', worker_id = $4, updated_at = $11::float8
FROM candidate WHERE tasks.id = candidate.candidate_id
RETURNING tasks.*, candidate.*, $10::text AS lease_id, (SELECT expires_at FROM lease) AS lease_expires_at,
  $13::float8 AS max_expires_at;

-- A window of ready tasks in assignment order, for explaining why a worker gets none.
-- name: ready_window
-- mirrors sqlite d18ba04b008f
SELECT id, repo, status, estimate_points, required_skills, area, min_trust, priority, updated_at
FROM tasks WHERE status = 'ready'
ORDER BY priority DESC, created_at, id LIMIT $1;

-- name: ready_count
-- mirrors sqlite f7967c50e083
SELECT count(*) AS n FROM tasks WHERE status = 'ready';

-- name: declined_since
-- mirrors sqlite 5a2c1fc75b48
SELECT DISTINCT task_id FROM offers WHERE worker_id = $1 AND state = 'rejected' AND resolved_at > $2;

-- ---------------------------------------------------------------- offers

-- name: offer_to_answer
-- mirrors sqlite 98ec9d5bf9e4
SELECT o.id AS offer_id, o.worker_id AS offer_worker_id, o.state AS offer_state,
       o.expires_at AS offer_expires_at, t.*,
       r.max_open_prs AS repo_max_open_prs, r.area_locks AS repo_area_locks, r.lease_ttl AS repo_lease_ttl,
       r.offer_ttl AS repo_offer_ttl, r.in_flight AS repo_in_flight, r.external_open_prs AS repo_external_open_prs,
       r.sensitive_areas AS repo_sensitive_areas,
       (SELECT coalesce(json_agg(a.area), '[]')::text FROM area_locks a WHERE a.repo = r.id) AS repo_locked_areas
FROM offers o JOIN tasks t ON t.id = o.task_id JOIN repos r ON r.id = t.repo
WHERE o.id = $1;

-- name: offer_resolve
-- mirrors sqlite 484f3aea258c
UPDATE offers SET state = $2, reason = $3, note = $4, resolved_at = $5 WHERE id = $1 AND state = 'pending';

-- name: offer_end_of_task
-- mirrors sqlite db465fdd76d9
UPDATE offers SET state = $2, reason = $3, resolved_at = $4 WHERE task_id = $1 AND state = 'pending'
RETURNING id, worker_id;

-- name: offers_due
-- mirrors sqlite d1d1b2543c71
SELECT * FROM offers WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at;

-- name: offers_pending_in_repo
-- mirrors sqlite d4ad53a4c766
SELECT o.id AS offer_id, o.expires_at, w.trust_tier AS worker_trust_tier, t.* FROM tasks t
JOIN offers o ON o.task_id = t.id AND o.state = 'pending' JOIN workers w ON w.id = o.worker_id
WHERE t.repo = $1 AND t.status = 'offered' ORDER BY t.priority DESC, t.created_at, t.id;

-- name: offers_pending_of_worker
-- mirrors sqlite f93e117007fe
SELECT o.id AS offer_id, o.expires_at, t.* FROM offers o JOIN tasks t ON t.id = o.task_id
WHERE o.worker_id = $1 AND o.state = 'pending' ORDER BY t.priority DESC, t.created_at, t.id;

-- ---------------------------------------------------------------- leases

-- name: lease_grant
-- mirrors sqlite e07e2eb0c0ec
WITH lease AS (
  INSERT INTO leases (id, task_id, worker_id, state, granted_at, expires_at, max_expires_at)
  VALUES ($1, $2, $3, 'active', $4, $5, $6)
)
UPDATE tasks SET status = 'leased', worker_id = $3, updated_at = $4 WHERE id = $2
RETURNING *, $1 AS lease_id, $5 AS lease_expires_at, $6 AS max_expires_at;

-- name: lease_get
-- mirrors sqlite 40fdc9e1d6d6
SELECT * FROM leases WHERE id = $1;

-- name: lease_active_of_task
-- mirrors sqlite a605129583b4
SELECT * FROM leases WHERE task_id = $1 AND state = 'active';

-- name: lease_end_of_task
-- mirrors sqlite bb2e71157437
UPDATE leases SET state = $2, ended_at = $3 WHERE task_id = $1 AND state = 'active' RETURNING id, worker_id;

-- name: lease_extend
-- mirrors sqlite 45ee693cdd96
UPDATE leases SET expires_at = $2 WHERE id = $1 AND state = 'active';

-- name: pool_alive_get
-- mirrors sqlite e94026823f3a
SELECT alive_at FROM pool_clock WHERE id = 1;

-- name: pool_alive_set
-- mirrors sqlite a299400b2801
UPDATE pool_clock SET alive_at = $1 WHERE id = 1;

-- name: pool_resume
-- mirrors sqlite 4225d62bddb9
WITH w AS (
  UPDATE workers SET last_heartbeat = last_heartbeat + $1 WHERE status <> 'offline'
), o AS (
  UPDATE offers SET expires_at = expires_at + $1 WHERE state = 'pending'
)
UPDATE leases SET expires_at = expires_at + $1, max_expires_at = max_expires_at + $1 WHERE state = 'active';

-- name: anything_due
-- mirrors sqlite bf8cd1fee746
SELECT EXISTS (SELECT 1 FROM offers WHERE state = 'pending' AND expires_at <= $1)
    OR EXISTS (SELECT 1 FROM leases WHERE state = 'active' AND expires_at <= $1)
    -- the longest silent of the workers not offline, at the head of workers_stale: with a generic plan, an EXISTS
    -- on last_heartbeat < $2 was a scan of every worker (0.7 ms with 11,000)
    OR (SELECT min(last_heartbeat) FROM workers WHERE status <> 'offline') < $2
    OR EXISTS (SELECT 1 FROM workers w JOIN leases l ON l.worker_id = w.id AND l.state = 'active'
               WHERE w.status = 'offline' AND w.offline_holding = 1 AND w.last_heartbeat < $3) AS due;

-- name: leases_due
-- mirrors sqlite 319ad9bd8db6
SELECT * FROM leases WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at;

-- Run by every write transaction: walk the few offline workers (workers_offline), not every active lease.
-- name: leases_of_offline
-- mirrors sqlite 05fe2da23366
SELECT l.* FROM workers w JOIN leases l ON l.worker_id = w.id AND l.state = 'active'
WHERE w.status = 'offline' AND w.offline_holding = 1 AND w.last_heartbeat < $1;

-- name: leases_active_of_worker
-- mirrors sqlite c97a1016519d
SELECT l.id AS lease_id, l.expires_at AS lease_expires_at, l.max_expires_at, t.* FROM leases l
JOIN tasks t ON t.id = l.task_id
WHERE l.worker_id = $1 AND l.state = 'active' ORDER BY l.granted_at, l.id;
