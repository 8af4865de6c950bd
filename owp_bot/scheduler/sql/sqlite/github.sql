-- Named statements of the GitHub App (github_operations.py). Tables: migrations/sqlite/002_github.sql.

-- ---------------------------------------------------------------- deliveries

-- name: gh_delivery_get
SELECT * FROM gh_deliveries WHERE id = ?1;

-- name: gh_delivery_upsert
INSERT INTO gh_deliveries (id, event, action, repo, outcome, detail, payload, attempts, received_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)
ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail,
    attempts = gh_deliveries.attempts + 1, updated_at = excluded.updated_at;

-- name: gh_delivery_received_at
SELECT received_at FROM gh_deliveries WHERE id = ?1;

-- name: gh_deliveries_list
-- Newest first, one instant in id order: the page after a delivery (its id and received_at), or the first.
SELECT id, event, action, repo, outcome, detail, attempts, received_at, updated_at FROM gh_deliveries
WHERE (?1 IS NULL OR outcome = ?1)
  AND (?2 IS NULL OR received_at < ?3 OR (received_at = ?3 AND id > ?2))
ORDER BY received_at DESC, id LIMIT ?4;

-- ---------------------------------------------------------------- installations and repos

-- name: gh_installation_upsert
INSERT INTO gh_installations (id, account, suspended, removed, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended,
    removed = excluded.removed, updated_at = excluded.updated_at;

-- name: gh_repos_uninstall
UPDATE gh_repos SET installation_id = NULL, updated_at = ?2 WHERE installation_id = ?1;

-- name: gh_repo_get
SELECT * FROM gh_repos WHERE repo = ?1;

-- name: gh_repo_set_installation
INSERT INTO gh_repos (repo, installation_id, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id, updated_at = excluded.updated_at;

-- name: gh_repo_forget
-- The app's record of a name that was not a pool repo gives way to the pool repo renamed to it.
DELETE FROM gh_repos WHERE repo = ?1;

-- name: gh_repo_rename
-- GitHub renamed or transferred pool repo ?1 to ?2 (github_operations.repo_renamed): every table that names it
-- follows. tasks.repo references repos.id: its check waits (defer_foreign_keys) until both name the new one.
PRAGMA defer_foreign_keys = ON;
UPDATE repos SET id = ?2 WHERE id = ?1;
UPDATE tasks SET repo = ?2 WHERE repo = ?1;
PRAGMA defer_foreign_keys = OFF;
UPDATE area_locks SET repo = ?2 WHERE repo = ?1;
UPDATE an_budget_samples SET repo = ?2 WHERE repo = ?1;
UPDATE gh_repos SET repo = ?2 WHERE repo = ?1;
UPDATE gh_pulls SET repo = ?2 WHERE repo = ?1;
UPDATE gh_outbox SET repo = ?2 WHERE repo = ?1;
UPDATE gh_issue_writes SET repo = ?2 WHERE repo = ?1;
UPDATE gh_issue_seen SET repo = ?2 WHERE repo = ?1;
UPDATE events SET repo = ?2 WHERE repo = ?1;
UPDATE gh_deliveries SET repo = ?2 WHERE repo = ?1;
-- gh_repo_names keeps the former name (a late delivery under it finds the repo) and learns the new one, which is no
-- other repository id's from now on (as in gh_repo_name_seen).
DELETE FROM gh_repo_names WHERE lower(repo) = lower(?2)
  AND github_id NOT IN (SELECT github_id FROM gh_repo_names WHERE lower(repo) = lower(?1));
INSERT INTO gh_repo_names (github_id, repo) SELECT github_id, ?2 FROM gh_repo_names WHERE lower(repo) = lower(?1)
ON CONFLICT DO NOTHING;

-- name: gh_repo_name_seen
-- GitHub's repository id ?1 goes by the name ?2 (migration 021). A name is one repository's at a time: another id
-- that went by it before (a repo renamed away, or deleted, and a new one created under its name) no longer finds
-- the repo now under that name (gh_repo_by_github_id).
DELETE FROM gh_repo_names WHERE lower(repo) = lower(?2) AND github_id <> ?1;
INSERT INTO gh_repo_names (github_id, repo) VALUES (?1, ?2) ON CONFLICT DO NOTHING;

-- name: gh_repo_route
-- Where a delivery about GitHub's repo named ?1, with repository id ?2 (NULL: none), goes (github_operations.
-- delivery_repo): the pool repo of that name, the pool repo of that id (an id's names are at most one pool repo's,
-- gh_repo_names_release), and whether the id went by that name.
SELECT (SELECT id FROM repos WHERE lower(id) = lower(?1) ORDER BY id = ?1 DESC, id LIMIT 1) AS named,
       (SELECT r.id FROM gh_repo_names n JOIN repos r ON lower(r.id) = lower(n.repo) WHERE n.github_id = ?2
        ORDER BY r.id LIMIT 1) AS owned,
       EXISTS (SELECT 1 FROM gh_repo_names WHERE github_id = ?2 AND lower(repo) = lower(?1)) AS went_by;

-- name: gh_repo_names_release
-- A new pool repo ?1 (ops.upsert_repo): a repository id that went by its name and is in the pool under another name
-- left the name behind (renamed away), so the new repo is not that id's.
DELETE FROM gh_repo_names WHERE lower(repo) = lower(?1)
  AND github_id IN (SELECT n.github_id FROM gh_repo_names n JOIN repos r ON lower(r.id) = lower(n.repo));

-- name: gh_repo_set_label
INSERT INTO gh_repos (repo, ready_label, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (repo) DO UPDATE SET ready_label = excluded.ready_label, updated_at = excluded.updated_at;

-- ---------------------------------------------------------------- issues

-- name: gh_issue_seen_get
SELECT updated_at, in_pool FROM gh_issue_seen WHERE repo = ?1 AND issue_number = ?2;

-- name: gh_issue_seen_set
-- The newest view of issue ?2 applied: GitHub's updated_at ?3, in the pool or not (?4); a gone issue's view may
-- be older, and never moves the time back.
INSERT INTO gh_issue_seen (repo, issue_number, updated_at, in_pool) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (repo, issue_number) DO UPDATE SET updated_at = max(gh_issue_seen.updated_at, excluded.updated_at),
    in_pool = excluded.in_pool;

-- ---------------------------------------------------------------- pull requests

-- name: gh_pull_get
SELECT * FROM gh_pulls WHERE repo = ?1 AND number = ?2;

-- name: gh_pull_upsert
INSERT INTO gh_pulls (repo, number, task_id, author, url, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (repo, number) DO UPDATE SET task_id = coalesce(excluded.task_id, gh_pulls.task_id),
    author = excluded.author, url = excluded.url, state = excluded.state, updated_at = excluded.updated_at;

-- Open PRs that name no pool task occupy the review budget too.
-- name: gh_repo_recount_external
UPDATE repos SET external_open_prs =
    (SELECT count(*) FROM gh_pulls WHERE repo = ?1 AND state = 'open' AND task_id IS NULL)
WHERE id = ?1;

-- name: gh_repo_named
-- The pool repo GitHub's name means: names are case-insensitive on GitHub; the exact one first.
SELECT id FROM repos WHERE lower(id) = lower(?1) ORDER BY id = ?1 DESC, id LIMIT 1;

-- name: gh_review_count
-- Review ?1 (approved | changes_requested, ?4) counted for worker ?3 (or nobody) on task ?2 (migration 019).
INSERT INTO gh_reviews (review_id, task_id, worker_id, state) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (review_id) DO NOTHING;

-- name: gh_review_dismiss
-- Review ?1 is dismissed: what it counted, once; no row when it never counted or was taken back already.
UPDATE gh_reviews SET dismissed = 1 WHERE review_id = ?1 AND dismissed = 0 RETURNING task_id, worker_id, state;

-- name: gh_task_by_pr
SELECT * FROM tasks WHERE repo = ?1 AND pr_number = ?2 ORDER BY updated_at DESC LIMIT 1;

-- name: gh_tasks_of_pr
-- Tasks waiting on this PR (also when a worker reported it by URL, without a closing reference), their worker as
-- reporter_id; and tasks whose report of it was voided, with that lease (voided_lease_id), its worker and when
-- it reported the PR (reported_at: the lease's end).
SELECT *, NULL AS voided_lease_id, worker_id AS reporter_id, NULL AS reported_at FROM tasks
WHERE repo = ?1 AND pr_number = ?2 AND status = 'pr_opened'
UNION ALL
SELECT t.*, l.id, l.worker_id, l.ended_at FROM gh_voided_reports v JOIN leases l ON l.id = v.lease_id JOIN tasks t ON t.id = l.task_id
WHERE v.pr_number = ?2 AND t.repo = ?1
ORDER BY id;

-- name: gh_lease_void
-- The report of PR ?3 on task ?1 by its worker ?2 is voided: the lease it completed (its last, named by the task's
-- last `lease.completed` of that worker: leases are indexed by worker only while active) is voided instead, and the
-- PR it reported is remembered. Two statements here, whose rows make one (statements_of).
UPDATE leases SET state = 'voided'
WHERE state = 'completed' AND id = (
  SELECT json_extract(details, '$.lease_id') FROM events
  WHERE target = ?1 AND type = 'lease.completed' AND json_extract(details, '$.worker_id') = ?2
  ORDER BY seq DESC LIMIT 1)
RETURNING id AS lease_id;
INSERT INTO gh_voided_reports (lease_id, pr_number) SELECT :lease_id, ?3 WHERE :lease_id IS NOT NULL
RETURNING lease_id;

-- name: gh_lease_unvoid
-- The void of lease ?1 is taken back: it completed after all.
DELETE FROM gh_voided_reports WHERE lease_id = ?1;
UPDATE leases SET state = 'completed' WHERE id = ?1 AND state = 'voided';

-- ---------------------------------------------------------------- outbox

-- name: gh_outbox_insert
INSERT INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5);

-- name: gh_outbox_repo_name
-- Ask GitHub which name pool repo ?1 (repository id ?2, the body) has now (github_operations.delivery_repo); one
-- question at a time per repo.
INSERT INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at, updated_at)
SELECT 'repo_name', ?1, 0, ?2, 'pending', 0, ?3, ?3, ?3
WHERE NOT EXISTS (SELECT 1 FROM gh_outbox WHERE state = 'pending' AND kind = 'repo_name' AND repo = ?1);

-- name: gh_outbox_sync_issue
INSERT OR IGNORE INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at,
                                 updated_at)
VALUES ('sync_issue', ?1, ?2, NULL, 'pending', 0, ?3, ?3, ?3);

-- name: gh_outbox_repo
-- a job's repo as it is now (a rename moves its row too)
SELECT repo FROM gh_outbox WHERE id = ?1;

-- name: gh_outbox_claim
-- The due jobs, held (not_before moved on) by the outbox that makes them.
UPDATE gh_outbox SET not_before = ?3 WHERE id IN
    (SELECT id FROM gh_outbox WHERE state = 'pending' AND not_before <= ?1 ORDER BY not_before, id LIMIT ?2)
RETURNING *;

-- name: gh_outbox_finish
UPDATE gh_outbox SET state = ?2, last_error = ?3, attempts = attempts + 1, updated_at = ?4 WHERE id = ?1;

-- name: gh_outbox_retry
UPDATE gh_outbox SET not_before = ?2, last_error = ?3, attempts = attempts + 1, updated_at = ?4 WHERE id = ?1;

-- name: gh_outbox_counts
SELECT state, count(*) AS n FROM gh_outbox GROUP BY state;

-- name: gh_cursor_get
SELECT seq FROM gh_cursor WHERE name = ?1;

-- name: gh_cursor_set
UPDATE gh_cursor SET seq = ?2 WHERE name = ?1;

-- Events after the cursor, with the issue of the task they concern (NULL when it is not a GitHub task).
-- name: gh_writeback_candidates
SELECT e.seq, e.type, t.repo, CASE WHEN t.source = 'github' THEN t.issue_number END AS issue_number
FROM events e LEFT JOIN tasks t ON t.id = e.target
WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2;

-- name: gh_issue_writes_get
SELECT * FROM gh_issue_writes WHERE repo = ?1 AND issue_number = ?2;

-- name: gh_issue_writes_upsert
INSERT INTO gh_issue_writes (repo, issue_number, comment_id, comment_body, labels) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (repo, issue_number) DO UPDATE SET comment_id = excluded.comment_id,
    comment_body = excluded.comment_body, labels = excluded.labels;

-- ---------------------------------------------------------------- app credentials (manifest flow)

-- name: gh_setup_state_insert
INSERT INTO gh_setup_states (state, expires_at) VALUES (?1, ?2);

-- name: gh_setup_state_take
DELETE FROM gh_setup_states WHERE state = ?1 AND expires_at > ?2;

-- name: gh_credentials_upsert
INSERT INTO gh_app_credentials (id, app_id, slug, html_url, private_key, webhook_secret, client_id, client_secret,
                                created_at)
VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (id) DO UPDATE SET app_id = excluded.app_id, slug = excluded.slug, html_url = excluded.html_url,
    private_key = excluded.private_key, webhook_secret = excluded.webhook_secret, client_id = excluded.client_id,
    client_secret = excluded.client_secret, created_at = excluded.created_at;

-- name: gh_credentials_get
SELECT * FROM gh_app_credentials WHERE id = 1;
