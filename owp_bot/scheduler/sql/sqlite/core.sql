-- Named statements of the SQLite backend. Parameters are positional (?1..?n) in the order the
-- operations pass them; the PostgreSQL file uses $1..$n in the same order.

-- name: event_insert
-- Its seq is the cursor's lastrowid: a RETURNING clause makes SQLite gather the rows in a temporary b-tree.
INSERT INTO events (ts, type, actor, target, repo, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- name: events_page
SELECT seq, ts, type, actor, target, repo, details FROM events
WHERE seq > ?1
  AND (?2 IS NULL OR type = ?2 OR (substr(?2, -2) = '.*' AND type LIKE substr(?2, 1, length(?2) - 1) || '%'))
  AND (?3 IS NULL OR actor = ?3)
  AND (?4 IS NULL OR target = ?4)
  AND (?5 IS NULL OR repo = ?5)
  AND (?6 IS NULL OR ts >= ?6)
  AND (?7 IS NULL OR ts < ?7)
ORDER BY seq LIMIT ?8;

-- name: events_last_seq
SELECT coalesce(max(seq), 0) AS seq FROM events;

-- name: events_for_target
SELECT seq, ts, type, actor, target, repo, details FROM events WHERE target = ?1 ORDER BY seq LIMIT ?2;

-- ---------------------------------------------------------------- workers

-- name: worker_insert
INSERT INTO workers (id, name, github_handle, skills, capacity_points, max_concurrent_tasks, status, note,
                     trust_tier, token_hash, last_heartbeat, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'idle', NULL, ?7, ?8, ?9, ?9);

-- name: worker_get
SELECT * FROM workers WHERE id = ?1;

-- name: worker_by_token
SELECT id FROM workers WHERE token_hash = ?1;

-- name: worker_by_handle
-- By its index whatever the statistics say: where most workers have no handle (all NULL: one value to ANALYZE),
-- SQLite would scan every worker instead, on every pull request and review webhook.
SELECT * FROM workers INDEXED BY workers_handle WHERE lower(github_handle) = lower(?1) ORDER BY created_at LIMIT 1;

-- name: worker_load
SELECT count(*) AS tasks, coalesce(sum(estimate_points), 0) AS points FROM tasks
WHERE worker_id = ?1 AND status IN ('offered', 'leased', 'in_progress', 'blocked');

-- name: worker_claimant
-- A worker asking for work: its row, its load, and (?3 = 1: the head start is on) whether a better-reputed
-- worker heard from since ?2 has room for a task (rep_better_rival, for this worker), asked only while some urgent
-- task is in its head start (else no task is held back, and that walk past every better-reputed worker who is busy
-- cost 1.1 ms with a thousand of them), and whether some urgent task is past its head start
SELECT w.*,
  (SELECT count(*) FROM leases l WHERE l.worker_id = w.id AND l.state = 'active') AS leases_active,
  (SELECT count(*) FROM offers o WHERE o.worker_id = w.id AND o.state = 'pending') AS offers_pending,
  (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id
     AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS tasks_in_use,
  (SELECT coalesce(sum(t.estimate_points), 0) FROM tasks t WHERE t.worker_id = w.id
     AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS points_in_use,
  CASE WHEN ?3 = 1 AND EXISTS (  -- CASE, not AND: SQLite evaluates both sides of an AND here
    SELECT 1 FROM tasks INDEXED BY tasks_ready_urgent
    WHERE status = 'ready' AND priority IN (SELECT value FROM json_each(?4)) AND updated_at > ?5
  ) THEN EXISTS (
    SELECT 1 FROM workers r INDEXED BY rep_workers_reputation
    WHERE r.status NOT IN ('offline', 'paused') AND r.reputation > w.reputation AND r.last_heartbeat >= ?2
      AND r.id <> w.id
      AND (SELECT count(*) FROM tasks h WHERE h.worker_id = r.id
             AND h.status IN ('offered', 'leased', 'in_progress', 'blocked')) < r.max_concurrent_tasks
      AND (SELECT coalesce(sum(h.estimate_points), 0) FROM tasks h WHERE h.worker_id = r.id
             AND h.status IN ('offered', 'leased', 'in_progress', 'blocked')) < r.capacity_points) ELSE 0 END AS rival,
  ?3 = 1 AND EXISTS (  -- is any urgent task (?4: a JSON list of priorities) past its head start (ready since ?5)?
    SELECT 1 FROM tasks INDEXED BY tasks_ready_urgent
    WHERE status = 'ready' AND priority IN (SELECT value FROM json_each(?4)) AND updated_at <= ?5) AS urgent_settled
FROM workers w WHERE w.id = ?1;

-- name: workers_status_of
-- ?1: a JSON list of worker ids
SELECT id, status, last_heartbeat FROM workers WHERE id IN (SELECT value FROM json_each(?1));

-- name: workers_heartbeat
-- ?1: a JSON list of {"id", "ts", "status", "note"}, one per worker: the buffered heartbeats, in one statement
UPDATE workers SET last_heartbeat = json_extract(b.value, '$.ts'), status = json_extract(b.value, '$.status'),
  note = json_extract(b.value, '$.note')
FROM json_each(?1) AS b WHERE workers.id = json_extract(b.value, '$.id');

-- name: workers_stale
SELECT id, status FROM workers WHERE status <> 'offline' AND last_heartbeat < ?1;

-- name: worker_set_offline
-- Marked when it holds a lease (migration 026: anything_due looks among those marked only).
UPDATE workers SET status = 'offline',
  offline_holding = EXISTS (SELECT 1 FROM leases l WHERE l.worker_id = ?1 AND l.state = 'active')
WHERE id = ?1;

-- name: workers_offline_released
-- Once the leases of the offline workers past their grace (?1) are lapsed: none of them holds one any more.
UPDATE workers SET offline_holding = 0 WHERE status = 'offline' AND offline_holding = 1 AND last_heartbeat < ?1;

-- name: workers_list
SELECT w.*,
       (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id
          AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS tasks_in_use,
       (SELECT coalesce(sum(t.estimate_points), 0) FROM tasks t WHERE t.worker_id = w.id
          AND t.status IN ('offered', 'leased', 'in_progress', 'blocked')) AS points_in_use
FROM workers w WHERE w.id > ?1 ORDER BY w.id LIMIT ?2;

-- ---------------------------------------------------------------- repos

-- name: repo_get
-- with the areas locked in it, as a JSON list
SELECT r.*, (SELECT json_group_array(a.area) FROM area_locks a WHERE a.repo = r.id) AS locked_areas
FROM repos r WHERE r.id = ?1;

-- name: repos_get
-- repo_get for several repos (?1: a JSON list of repo ids), in no particular order
SELECT r.*, (SELECT json_group_array(a.area) FROM area_locks a WHERE a.repo = r.id) AS locked_areas
FROM repos r WHERE r.id IN (SELECT value FROM json_each(?1));

-- name: repo_insert
INSERT INTO repos (id, max_open_prs, area_locks, lease_ttl, offer_ttl, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6);

-- name: repo_update
UPDATE repos SET max_open_prs = ?2, area_locks = ?3, lease_ttl = ?4, offer_ttl = ?5, updated_at = ?6
WHERE id = ?1;

-- name: repos_list
SELECT * FROM repos ORDER BY id;

-- name: repo_counts
SELECT status, count(*) AS n FROM tasks WHERE repo = ?1 GROUP BY status;

-- ---------------------------------------------------------------- area locks

-- name: area_locks_clear_repo
DELETE FROM area_locks WHERE repo = ?1;

-- name: area_locks_rebuild_repo
INSERT OR IGNORE INTO area_locks (repo, area, task_id)
SELECT repo, area, id FROM tasks
WHERE repo = ?1 AND area IS NOT NULL
  AND status IN ('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')
ORDER BY created_at;

-- ---------------------------------------------------------------- tasks

-- name: task_insert
INSERT INTO tasks (id, repo, external_key, title, url, issue_number, estimate_points, required_skills, area,
                   priority, min_trust, status, source, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'ready', ?12, ?13, ?13);

-- name: task_skill_insert
INSERT INTO task_skills (task_id, skill) VALUES (?1, ?2);

-- name: task_skills_clear
DELETE FROM task_skills WHERE task_id = ?1;

-- name: task_get
SELECT * FROM tasks WHERE id = ?1;

-- name: task_of_report
-- task_get, with the GitHub installation of the task's repo (installation_id: null when the app is not installed
-- there): whether a worker's reported PR is checked on GitHub (operations.check_reported_pull), in the one read.
SELECT t.*, g.installation_id FROM tasks t LEFT JOIN gh_repos g ON g.repo = t.repo WHERE t.id = ?1;

-- name: task_by_key
SELECT * FROM tasks WHERE repo = ?1 AND external_key = ?2;

-- name: task_of_issue
-- The task made from a GitHub issue: found by the issue, never by a key (migration issue_tasks_unkeyed).
SELECT * FROM tasks WHERE repo = ?1 AND issue_number = ?2 AND source = 'github';

-- name: task_update_fields
UPDATE tasks SET title = ?2, url = ?3, issue_number = ?4, estimate_points = ?5, required_skills = ?6,
                 area = ?7, priority = ?8, min_trust = ?9, updated_at = ?10
WHERE id = ?1;

-- name: task_set_status
UPDATE tasks SET status = ?2, worker_id = ?3, updated_at = ?4,
  pr_url = coalesce(?5, pr_url), pr_number = CASE WHEN ?5 IS NULL THEN pr_number ELSE ?6 END
WHERE id = ?1 RETURNING *;

-- name: task_complete_lease
-- lease_end_of_task (completed), then task_set_status: the task, with the lease that ended (lease_id,
-- lease_worker_id; null when none was active). Two statements here, whose rows make one (statements_of).
UPDATE leases SET state = 'completed', ended_at = ?4 WHERE task_id = ?1 AND state = 'active'
RETURNING id AS lease_id, worker_id AS lease_worker_id;
UPDATE tasks SET status = ?2, worker_id = ?3, updated_at = ?4,
  pr_url = coalesce(?5, pr_url), pr_number = CASE WHEN ?5 IS NULL THEN pr_number ELSE ?6 END
WHERE id = ?1 RETURNING *;

-- name: task_report_held
-- A worker's report (?3: in_progress, blocked or pr_opened) on a task it holds (?2) and has not yet opened a PR
-- for, without reading the task first: the task as it is now, its status before (previous) and, for pr_opened,
-- the lease that ended (lease_id, lease_worker_id), and its repo's GitHub installation (installation_id, as in
-- task_of_report). No row when the worker does not hold it so: then the operation reads the task to say why.
-- Held (leased, in_progress or blocked) is asked with instr, not IN (…): see migrations/sqlite/030.
SELECT t.status AS previous, g.installation_id FROM tasks t LEFT JOIN gh_repos g ON g.repo = t.repo
WHERE t.id = ?1 AND t.worker_id = ?2 AND instr('|leased|in_progress|blocked|', '|' || t.status || '|') > 0;
UPDATE leases SET state = 'completed', ended_at = ?4
WHERE ?3 = 'pr_opened' AND task_id = ?1 AND state = 'active'
  AND EXISTS (SELECT 1 FROM tasks WHERE id = ?1 AND worker_id = ?2
                AND instr('|leased|in_progress|blocked|', '|' || status || '|') > 0)
RETURNING id AS lease_id, worker_id AS lease_worker_id;
UPDATE tasks SET status = ?3, updated_at = ?4,
  pr_url = coalesce(?5, pr_url), pr_number = CASE WHEN ?5 IS NULL THEN pr_number ELSE ?6 END
WHERE id = ?1 AND worker_id = ?2 AND instr('|leased|in_progress|blocked|', '|' || status || '|') > 0
RETURNING *;

-- name: tasks_list
SELECT * FROM tasks t
WHERE t.id > ?1
  AND (?2 IS NULL OR t.repo = ?2)
  AND (?3 IS NULL OR t.status = ?3)
  AND (?4 IS NULL OR t.area = ?4)
  AND (?5 IS NULL OR EXISTS (SELECT 1 FROM task_skills s WHERE s.task_id = t.id AND s.skill = ?5))
  AND (?6 IS NULL OR t.worker_id = ?6)
ORDER BY t.id LIMIT ?7;

-- fragment: task_fits
-- Whether ready task t of repo r fits this worker now (the conditions policy.ineligibility checks again).
-- ?1 free points, ?2 trust tier, ?3 skills (JSON list), ?4 worker id, ?5 declines count since.
-- Reputation head start (docs/protocol.md "Reputation"): a task of priority >= ?6 that became ready after ?7
-- is skipped when ?8 = 1, i.e. a better-reputed online worker with a free slot exists (rep_better_rival,
-- asked once per request): the hot query compares constants, it never scans workers per candidate.
t.estimate_points <= ?1
  AND t.min_trust <= ?2
  AND r.in_flight + r.external_open_prs < r.max_open_prs
  AND NOT EXISTS (SELECT 1 FROM area_locks a WHERE a.repo = t.repo AND a.area = t.area)
  AND NOT EXISTS (SELECT 1 FROM task_skills s WHERE s.task_id = t.id
                    AND s.skill NOT IN (SELECT value FROM json_each(?3)))
  AND NOT EXISTS (SELECT 1 FROM offers o INDEXED BY offers_declined
                    WHERE o.worker_id = ?4 AND o.task_id = t.id AND o.state = 'rejected' AND o.resolved_at > ?5)
  AND (?2 >= 2 OR t.area IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(r.sensitive_areas) j WHERE j.value = t.area))
  AND (t.priority < ?6 OR t.updated_at <= ?7 OR ?8 = 0)

-- fragment: ready_candidate
-- The assignment hot path: the best ready task this worker may take (task_fits: ?1-?8), of priority below ?9, in
-- the order of tasks_ready, with its repo as it is before the task is taken (columns repo_*: the policy checks
-- the grant against them). Two ways to find it, the second only when the first finds nothing:
-- 1. the first 512 ready tasks of tasks_ready, in order (a co-routine yields the subquery's rows in its ORDER BY
--    order, and LIMIT 1 ends the walk at the first that fits: tests/test_candidate.py holds SQLite to it);
-- 2. the best that fits in each repo with room in its review budget, the best of those: `near`, among the first
--    32 of the repo's ready tasks in order (tasks_by_repo). For a repo none of whose first 32 fits (and that has
--    more), by trust tier and skill list (tasks_ready_by_kind: a repo's ready tasks by tier and list, then in
--    order): `kinds` hops from one list to the next, a seek each, tiers up to the worker's only; `heads`, for each
--    list the worker has every skill of, the first that fits among the list's first 32. Where a list's first 32
--    do not fit and more follow, or the repo has more than 64 lists, the repo is `deep`: walked whole, in order.
-- The first is the usual case and stops within a few entries. Tasks that fit nobody gather at the head of the
-- queue, above all those of repos whose review budget is full; walking past all of them was a scan of every
-- ready task once every budget was full (42 ms at 60,000: bench/RESULTS.md). The second costs a probe per repo
-- with room instead, however many tasks wait in full ones; tasks of a tier or skills the worker has not are
-- skipped by the list (tests/test_candidate.py counts the steps). What it does not avoid: a deep repo's walk,
-- past tasks of lists the worker fits but cannot take (size, a locked area, a decline) ahead of its first fit,
-- or all of them when none fits; no index skips those (the single walk of before paid for them too).
SELECT * FROM (
  SELECT
-- include: candidate_columns
  FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority
        FROM tasks INDEXED BY tasks_ready WHERE status = 'ready' AND priority < ?9
        ORDER BY priority DESC, created_at, id LIMIT 512) t
  CROSS JOIN repos r ON r.id = t.repo
  WHERE
-- include: task_fits
  LIMIT 1)
UNION ALL
SELECT * FROM (
  SELECT
-- include: candidate_columns
  FROM tasks t JOIN repos r ON r.id = t.repo
  WHERE t.id IN (
    WITH RECURSIVE near(repo, id) AS (
      SELECT r.id, (SELECT t.id FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority
                                      FROM tasks INDEXED BY tasks_by_repo
                                      WHERE repo = r.id AND status = 'ready' AND priority < ?9
                                      ORDER BY priority DESC, created_at, id LIMIT 32) t
                    WHERE
-- include: task_fits
                    LIMIT 1)
      -- only where more than the 512 of the first way are ready: else it has looked at them all (a small pool)
      FROM (SELECT 1 FROM tasks INDEXED BY tasks_ready_urgent WHERE status = 'ready' AND priority < ?9
            LIMIT 1 OFFSET 512) CROSS JOIN repos r
      WHERE r.in_flight + r.external_open_prs < r.max_open_prs),
    kinds(repo, trust, skills, hops) AS (
      SELECT near.repo, tier.column1, (SELECT k.required_skills FROM tasks k INDEXED BY tasks_ready_by_kind
                                       WHERE k.repo = near.repo AND k.status = 'ready' AND k.min_trust = tier.column1
                                       ORDER BY k.required_skills LIMIT 1), 1
      FROM near CROSS JOIN (VALUES (0), (1), (2)) tier  -- the trust tiers (models.TrustTier); near the outer loop
      WHERE near.id IS NULL  -- and the repo has more than the 32 near looked at:
        AND (SELECT 1 FROM tasks INDEXED BY tasks_by_repo WHERE repo = near.repo AND status = 'ready' AND priority < ?9
             ORDER BY priority DESC, created_at, id LIMIT 1 OFFSET 32) IS NOT NULL
        AND tier.column1 <= ?2
      UNION ALL
      SELECT kinds.repo, kinds.trust, (SELECT k.required_skills FROM tasks k INDEXED BY tasks_ready_by_kind
                                       WHERE k.repo = kinds.repo AND k.status = 'ready' AND k.min_trust = kinds.trust
                                         AND k.required_skills > kinds.skills
                                       ORDER BY k.required_skills LIMIT 1), kinds.hops + 1
      FROM kinds WHERE kinds.skills IS NOT NULL AND kinds.hops < 64),
    heads(repo, trust, skills, id) AS (
      SELECT r.id, kinds.trust, kinds.skills,
             (SELECT t.id FROM (SELECT id, repo, area, estimate_points, min_trust, updated_at, priority
                                FROM tasks INDEXED BY tasks_ready_by_kind
                                WHERE repo = r.id AND status = 'ready' AND min_trust = kinds.trust
                                  AND required_skills = kinds.skills AND priority < ?9
                                ORDER BY priority DESC, created_at, id LIMIT 32) t
              WHERE
-- include: task_fits
              LIMIT 1)
      FROM kinds JOIN repos r ON r.id = kinds.repo
      WHERE kinds.skills IS NOT NULL AND kinds.hops < 64
        AND NOT EXISTS (SELECT 1 FROM json_each(kinds.skills) j
                        WHERE j.value NOT IN (SELECT value FROM json_each(?3)))),
    -- a repo where a list's first 32 do not fit and more follow, or with more than 64 lists: walked whole, in order
    deep(repo) AS (
      SELECT repo FROM heads
      WHERE id IS NULL AND (SELECT 1 FROM tasks INDEXED BY tasks_ready_by_kind
                            WHERE repo = heads.repo AND status = 'ready' AND min_trust = heads.trust
                              AND required_skills = heads.skills AND priority < ?9
                            ORDER BY priority DESC, created_at, id LIMIT 1 OFFSET 32) IS NOT NULL
      UNION SELECT repo FROM kinds WHERE hops = 64 AND skills IS NOT NULL)
    SELECT id FROM near WHERE id IS NOT NULL
    UNION ALL
    SELECT id FROM heads WHERE id IS NOT NULL AND repo NOT IN (SELECT repo FROM deep)
    UNION ALL
    SELECT (SELECT t.id FROM tasks t INDEXED BY tasks_by_repo
            WHERE t.repo = r.id AND t.status = 'ready' AND t.priority < ?9 AND
-- include: task_fits
            ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1)
    FROM deep JOIN repos r ON r.id = deep.repo)
  ORDER BY t.priority DESC, t.created_at, t.id LIMIT 1)
LIMIT 1

-- fragment: candidate_columns
-- The candidate task t and its repo r as ready_candidate returns them.
t.id AS candidate_id, r.max_open_prs AS repo_max_open_prs, r.area_locks AS repo_area_locks,
  r.lease_ttl AS repo_lease_ttl, r.offer_ttl AS repo_offer_ttl, r.in_flight AS repo_in_flight,
  r.external_open_prs AS repo_external_open_prs, r.sensitive_areas AS repo_sensitive_areas,
  (SELECT json_group_array(a.area) FROM area_locks a WHERE a.repo = r.id) AS repo_locked_areas

-- name: offer_next
-- The best ready task for this worker (ready_candidate: ?1-?9), offered to it at once (?10 the offer's id, ?11
-- now, ?12 the pool's offer TTL when the repo sets none): the task as it is now, with its offer (as
-- offers_pending_of_worker lists it) and its repo as it was (repo_*). No row when no task fits. Three
-- statements here, one on PostgreSQL: the later ones name what the first returned (:candidate_id).
-- include: ready_candidate
;
INSERT INTO offers (id, task_id, worker_id, state, created_at, expires_at)
SELECT ?10, :candidate_id, ?4, 'pending', ?11, ?11 + coalesce(:repo_offer_ttl, ?12) WHERE :candidate_id IS NOT NULL;
UPDATE tasks SET status = 'offered', worker_id = ?4, updated_at = ?11 WHERE id = :candidate_id
RETURNING *, ?10 AS offer_id, (SELECT expires_at FROM offers WHERE id = ?10) AS expires_at;

-- name: lease_next
-- As offer_next, leased (?12 the pool's lease TTL, ?13 the lease's cap): with its lease, as
-- leases_active_of_worker lists it.
-- include: ready_candidate
;
INSERT INTO leases (id, task_id, worker_id, state, granted_at, expires_at, max_expires_at)
SELECT ?10, :candidate_id, ?4, 'active', ?11, min(?11 + coalesce(:repo_lease_ttl, ?12), ?13), ?13
WHERE :candidate_id IS NOT NULL;
UPDATE tasks SET status = 'leased', worker_id = ?4, updated_at = ?11 WHERE id = :candidate_id
RETURNING *, ?10 AS lease_id, (SELECT expires_at FROM leases WHERE id = ?10) AS lease_expires_at,
  ?13 AS max_expires_at;

-- A window of ready tasks in assignment order, for explaining why a worker gets none.
-- name: ready_window
-- What the rules judge a task by (operations.task_view), its priority and when it became ready.
SELECT id, repo, status, estimate_points, required_skills, area, min_trust, priority, updated_at
FROM tasks INDEXED BY tasks_ready WHERE status = 'ready'
ORDER BY priority DESC, created_at, id LIMIT ?1;

-- name: ready_count
-- Counted in the narrowest index of the ready tasks: the planner's own pick, tasks_by_repo, has twice the pages.
SELECT count(*) AS n FROM tasks INDEXED BY tasks_ready_urgent WHERE status = 'ready';

-- name: declined_since
SELECT DISTINCT task_id FROM offers WHERE worker_id = ?1 AND state = 'rejected' AND resolved_at > ?2;

-- ---------------------------------------------------------------- offers

-- name: offer_to_answer
-- An offer (columns offer_*) with its task (t.*) and the task's repo (columns repo_*, as ready_candidate's):
-- what accepting or declining it reads, in one statement.
SELECT o.id AS offer_id, o.worker_id AS offer_worker_id, o.state AS offer_state,
       o.expires_at AS offer_expires_at, t.*,
       r.max_open_prs AS repo_max_open_prs, r.area_locks AS repo_area_locks, r.lease_ttl AS repo_lease_ttl,
       r.offer_ttl AS repo_offer_ttl, r.in_flight AS repo_in_flight, r.external_open_prs AS repo_external_open_prs,
       r.sensitive_areas AS repo_sensitive_areas,
       (SELECT json_group_array(a.area) FROM area_locks a WHERE a.repo = r.id) AS repo_locked_areas
FROM offers o JOIN tasks t ON t.id = o.task_id JOIN repos r ON r.id = t.repo
WHERE o.id = ?1;

-- name: offer_resolve
UPDATE offers SET state = ?2, reason = ?3, note = ?4, resolved_at = ?5 WHERE id = ?1 AND state = 'pending';

-- name: offer_end_of_task
-- the task's pending offer ends (?2: its new state): the offer, or no row when there was none
UPDATE offers SET state = ?2, reason = ?3, resolved_at = ?4 WHERE task_id = ?1 AND state = 'pending'
RETURNING id, worker_id;

-- name: offers_due
SELECT * FROM offers WHERE state = 'pending' AND expires_at <= ?1 ORDER BY expires_at;

-- name: offers_pending_in_repo
-- the tasks of a repo on offer, with their offer and the tier of the worker it is for (an area became sensitive)
SELECT o.id AS offer_id, o.expires_at, w.trust_tier AS worker_trust_tier, t.* FROM tasks t
JOIN offers o ON o.task_id = t.id AND o.state = 'pending' JOIN workers w ON w.id = o.worker_id
WHERE t.repo = ?1 AND t.status = 'offered' ORDER BY t.priority DESC, t.created_at, t.id;

-- name: offers_pending_of_worker
SELECT o.id AS offer_id, o.expires_at, t.* FROM offers o JOIN tasks t ON t.id = o.task_id
WHERE o.worker_id = ?1 AND o.state = 'pending' ORDER BY t.priority DESC, t.created_at, t.id;

-- ---------------------------------------------------------------- leases

-- name: lease_grant
-- the lease, then its task leased to the worker (one statement on PostgreSQL: sqlite_store.statements_of):
-- the task with its lease, as leases_active_of_worker lists it
INSERT INTO leases (id, task_id, worker_id, state, granted_at, expires_at, max_expires_at)
VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6);
UPDATE tasks SET status = 'leased', worker_id = ?3, updated_at = ?4 WHERE id = ?2
RETURNING *, ?1 AS lease_id, ?5 AS lease_expires_at, ?6 AS max_expires_at;

-- name: lease_get
SELECT * FROM leases WHERE id = ?1;

-- name: lease_active_of_task
SELECT * FROM leases WHERE task_id = ?1 AND state = 'active';

-- name: lease_end_of_task
-- the task's active lease ends (?2: its new state): the lease, or no row when there was none
UPDATE leases SET state = ?2, ended_at = ?3 WHERE task_id = ?1 AND state = 'active' RETURNING id, worker_id;

-- name: lease_extend
UPDATE leases SET expires_at = ?2 WHERE id = ?1 AND state = 'active';

-- name: pool_alive_get
SELECT alive_at FROM pool_clock WHERE id = 1;

-- name: pool_alive_set
UPDATE pool_clock SET alive_at = ?1 WHERE id = 1;

-- name: pool_resume
-- The whole pool was down for ?1 seconds: the heartbeats of the workers not offline, pending offers and active
-- leases (their expiry and their renewal cap) move on by that much.
UPDATE workers SET last_heartbeat = last_heartbeat + ?1 WHERE status <> 'offline';
UPDATE offers SET expires_at = expires_at + ?1 WHERE state = 'pending';
UPDATE leases SET expires_at = expires_at + ?1, max_expires_at = max_expires_at + ?1 WHERE state = 'active';

-- name: anything_due
-- Every write transaction asks this first: one indexed probe instead of the four queries below when, as
-- usual, nothing has run out. Parameters: now, the silence cutoff (workers_stale), the offline cutoff.
SELECT EXISTS (SELECT 1 FROM offers WHERE state = 'pending' AND expires_at <= ?1)
    OR EXISTS (SELECT 1 FROM leases WHERE state = 'active' AND expires_at <= ?1)
    OR EXISTS (SELECT 1 FROM workers WHERE status <> 'offline' AND last_heartbeat < ?2)
    OR EXISTS (SELECT 1 FROM workers w INDEXED BY workers_offline_holding
               CROSS JOIN leases l ON l.worker_id = w.id AND l.state = 'active'
               WHERE w.status = 'offline' AND w.offline_holding = 1 AND w.last_heartbeat < ?3) AS due;

-- name: leases_due
SELECT * FROM leases WHERE state = 'active' AND expires_at <= ?1 ORDER BY expires_at;

-- Walk the few offline workers that hold leases (workers_offline_holding), not every active lease.
-- name: leases_of_offline
SELECT l.* FROM workers w INDEXED BY workers_offline_holding CROSS JOIN leases l ON l.worker_id = w.id AND l.state = 'active'
WHERE w.status = 'offline' AND w.offline_holding = 1 AND w.last_heartbeat < ?1;

-- name: leases_active_of_worker
SELECT l.id AS lease_id, l.expires_at AS lease_expires_at, l.max_expires_at, t.* FROM leases l
JOIN tasks t ON t.id = l.task_id
WHERE l.worker_id = ?1 AND l.state = 'active' ORDER BY l.granted_at, l.id;
