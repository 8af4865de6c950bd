-- Named statements of the GitHub App on PostgreSQL: the names of sql/sqlite/github.sql, $1..$n in the same
-- order. Tables: migrations/postgres/002_github.sql.

-- ---------------------------------------------------------------- deliveries

-- name: gh_delivery_get
-- mirrors sqlite ce13465791da
SELECT * FROM gh_deliveries WHERE id = $1;

-- name: gh_delivery_upsert
-- mirrors sqlite a28479dc83a8
INSERT INTO gh_deliveries (id, event, action, repo, outcome, detail, payload, attempts, received_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)
ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail,
    attempts = gh_deliveries.attempts + 1, updated_at = excluded.updated_at;

-- name: gh_delivery_received_at
-- mirrors sqlite 3c96d8c11b11
SELECT received_at FROM gh_deliveries WHERE id = $1;

-- name: gh_deliveries_list
-- mirrors sqlite bcb5917609c6
SELECT id, event, action, repo, outcome, detail, attempts, received_at, updated_at FROM gh_deliveries
WHERE ($1::text IS NULL OR outcome = $1::text)
  AND ($2::text IS NULL OR received_at < $3::double precision
       OR (received_at = $3::double precision AND id > $2::text))
ORDER BY received_at DESC, id LIMIT $4;

-- ---------------------------------------------------------------- installations and repos

-- name: gh_installation_upsert
-- mirrors sqlite fa58c591e64a
INSERT INTO gh_installations (id, account, suspended, removed, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET account = excluded.account, suspended = excluded.suspended,
    removed = excluded.removed, updated_at = excluded.updated_at;

-- name: gh_repos_uninstall
-- mirrors sqlite e96e49615447
UPDATE gh_repos SET installation_id = NULL, updated_at = $2 WHERE installation_id = $1;

-- name: gh_repo_get
-- mirrors sqlite a7e7613a3898
SELECT * FROM gh_repos WHERE repo = $1;

-- name: gh_repo_set_installation
-- mirrors sqlite 78d37bc56da8
INSERT INTO gh_repos (repo, installation_id, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (repo) DO UPDATE SET installation_id = excluded.installation_id, updated_at = excluded.updated_at;

-- name: gh_repo_forget
-- mirrors sqlite a0bc78c1dc77
DELETE FROM gh_repos WHERE repo = $1;

-- name: gh_repo_rename
-- mirrors sqlite 83e33beaa20b
-- One statement: the foreign key of tasks.repo is checked at its end, when tasks name the renamed repos row.
WITH moved_repo AS (UPDATE repos SET id = $2 WHERE id = $1),
     moved_tasks AS (UPDATE tasks SET repo = $2 WHERE repo = $1),
     moved_locks AS (UPDATE area_locks SET repo = $2 WHERE repo = $1),
     moved_samples AS (UPDATE an_budget_samples SET repo = $2 WHERE repo = $1),
     moved_gh_repo AS (UPDATE gh_repos SET repo = $2 WHERE repo = $1),
     moved_pulls AS (UPDATE gh_pulls SET repo = $2 WHERE repo = $1),
     moved_outbox AS (UPDATE gh_outbox SET repo = $2 WHERE repo = $1),
     moved_writes AS (UPDATE gh_issue_writes SET repo = $2 WHERE repo = $1),
     moved_seen AS (UPDATE gh_issue_seen SET repo = $2 WHERE repo = $1),
     moved_deliveries AS (UPDATE gh_deliveries SET repo = $2 WHERE repo = $1),
     released AS (DELETE FROM gh_repo_names WHERE lower(repo) = lower($2)
                  AND github_id NOT IN (SELECT github_id FROM gh_repo_names WHERE lower(repo) = lower($1))),
     named AS (INSERT INTO gh_repo_names (github_id, repo)
               SELECT github_id, $2 FROM gh_repo_names WHERE lower(repo) = lower($1) ON CONFLICT DO NOTHING)
UPDATE events SET repo = $2 WHERE repo = $1;

-- name: gh_repo_name_seen
-- mirrors sqlite f6c413722a70
WITH gone AS (DELETE FROM gh_repo_names WHERE lower(repo) = lower($2) AND github_id <> $1)
INSERT INTO gh_repo_names (github_id, repo) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- name: gh_repo_route
-- mirrors sqlite 97db3b17fdb7
SELECT (SELECT id FROM repos WHERE lower(id) = lower($1) ORDER BY id = $1 DESC, id LIMIT 1) AS named,
       (SELECT r.id FROM gh_repo_names n JOIN repos r ON lower(r.id) = lower(n.repo) WHERE n.github_id = $2
        ORDER BY r.id LIMIT 1) AS owned,
       EXISTS (SELECT 1 FROM gh_repo_names WHERE github_id = $2 AND lower(repo) = lower($1)) AS went_by;

-- name: gh_repo_names_release
-- mirrors sqlite 0741b471b077
DELETE FROM gh_repo_names WHERE lower(repo) = lower($1)
  AND github_id IN (SELECT n.github_id FROM gh_repo_names n JOIN repos r ON lower(r.id) = lower(n.repo));

-- name: gh_repo_set_label
-- mirrors sqlite 1264c7b2f2f1
INSERT INTO gh_repos (repo, ready_label, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (repo) DO UPDATE SET ready_label = excluded.ready_label, updated_at = excluded.updated_at;

-- ---------------------------------------------------------------- issues

-- name: gh_issue_seen_get
-- mirrors sqlite 3cdbcf846766
SELECT updated_at, in_pool FROM gh_issue_seen WHERE repo = $1 AND issue_number = $2;

-- name: gh_issue_seen_set
-- mirrors sqlite 34f903a27e39
INSERT INTO gh_issue_seen (repo, issue_number, updated_at, in_pool) VALUES ($1, $2, $3, $4)
ON CONFLICT (repo, issue_number) DO UPDATE SET updated_at = greatest(gh_issue_seen.updated_at, excluded.updated_at),
    in_pool = excluded.in_pool;

-- ---------------------------------------------------------------- pull requests

-- name: gh_pull_get
-- mirrors sqlite b4fc340e1385
SELECT * FROM gh_pulls WHERE repo = $1 AND number = $2;

-- name: gh_pull_upsert
-- mirrors sqlite d4cc87897980
INSERT INTO gh_pulls (repo, number, task_id, author, url, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (repo, number) DO UPDATE SET task_id = coalesce(excluded.task_id, gh_pulls.task_id),
    author = excluded.author, url = excluded.url, state = excluded.state, updated_at = excluded.updated_at;

-- Open PRs that name no pool task occupy the review budget too.
-- name: gh_repo_recount_external
-- mirrors sqlite d2c7151308a7
UPDATE repos SET external_open_prs =
    (SELECT count(*) FROM gh_pulls WHERE repo = $1 AND state = 'open' AND task_id IS NULL)
WHERE id = $1;

-- name: gh_repo_named
-- mirrors sqlite e81886dc7bd2
SELECT id FROM repos WHERE lower(id) = lower($1) ORDER BY id = $1 DESC, id LIMIT 1;

-- name: gh_review_count
-- mirrors sqlite 8072e4b9aac1
INSERT INTO gh_reviews (review_id, task_id, worker_id, state) VALUES ($1, $2, $3, $4)
ON CONFLICT (review_id) DO NOTHING;

-- name: gh_review_dismiss
-- mirrors sqlite 58c8b24b9e39
UPDATE gh_reviews SET dismissed = 1 WHERE review_id = $1 AND dismissed = 0 RETURNING task_id, worker_id, state;

-- name: gh_task_by_pr
-- mirrors sqlite 4877a7cc9932
SELECT * FROM tasks WHERE repo = $1 AND pr_number = $2 ORDER BY updated_at DESC LIMIT 1;

-- name: gh_tasks_of_pr
-- mirrors sqlite dfb1c926d708
SELECT *, NULL::text AS voided_lease_id, worker_id AS reporter_id, NULL::double precision AS reported_at FROM tasks
WHERE repo = $1 AND pr_number = $2 AND status = 'pr_opened'
UNION ALL
SELECT t.*, l.id, l.worker_id, l.ended_at FROM gh_voided_reports v JOIN leases l ON l.id = v.lease_id JOIN tasks t ON t.id = l.task_id
WHERE v.pr_number = $2 AND t.repo = $1
ORDER BY id;

-- name: gh_lease_void
-- mirrors sqlite 5606c99d8fc2
WITH voided AS (
  UPDATE leases SET state = 'voided'
  WHERE state = 'completed' AND id = (
    SELECT details::jsonb ->> 'lease_id' FROM events
    WHERE target = $1 AND type = 'lease.completed' AND details::jsonb ->> 'worker_id' = $2
    ORDER BY seq DESC LIMIT 1)
  RETURNING id
)
INSERT INTO gh_voided_reports (lease_id, pr_number) SELECT id, $3 FROM voided RETURNING lease_id;

-- name: gh_lease_unvoid
-- mirrors sqlite c4e0406d3dba
WITH gone AS (DELETE FROM gh_voided_reports WHERE lease_id = $1 RETURNING lease_id)
UPDATE leases SET state = 'completed' WHERE id IN (SELECT lease_id FROM gone) AND state = 'voided';

-- ---------------------------------------------------------------- outbox

-- name: gh_outbox_insert
-- mirrors sqlite 86d6faff152a
INSERT INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5);

-- name: gh_outbox_repo_name
-- mirrors sqlite 688538923f8c
INSERT INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at, updated_at)
SELECT 'repo_name', $1::text, 0, $2::text, 'pending', 0, $3::double precision, $3::double precision,
       $3::double precision
WHERE NOT EXISTS (SELECT 1 FROM gh_outbox WHERE state = 'pending' AND kind = 'repo_name' AND repo = $1::text);

-- name: gh_outbox_sync_issue
-- mirrors sqlite 0d3fe381d456
INSERT INTO gh_outbox (kind, repo, issue_number, body, state, attempts, not_before, created_at, updated_at)
VALUES ('sync_issue', $1, $2, NULL, 'pending', 0, $3, $3, $3)
ON CONFLICT DO NOTHING;

-- name: gh_outbox_repo
-- mirrors sqlite edc7969ac8cd
SELECT repo FROM gh_outbox WHERE id = $1;

-- name: gh_outbox_claim
-- mirrors sqlite e34884837eff
UPDATE gh_outbox SET not_before = $3 WHERE id IN
    (SELECT id FROM gh_outbox WHERE state = 'pending' AND not_before <= $1 ORDER BY not_before, id LIMIT $2)
RETURNING *;

-- name: gh_outbox_finish
-- mirrors sqlite c7c1d2c89749
UPDATE gh_outbox SET state = $2, last_error = $3, attempts = attempts + 1, updated_at = $4 WHERE id = $1;

-- name: gh_outbox_retry
-- mirrors sqlite afcb495f9cae
UPDATE gh_outbox SET not_before = $2, last_error = $3, attempts = attempts + 1, updated_at = $4 WHERE id = $1;

-- name: gh_outbox_counts
-- mirrors sqlite 6910f4b3ec3e
SELECT state, count(*) AS n FROM gh_outbox GROUP BY state;

-- name: gh_cursor_get
-- mirrors sqlite a3ca824c3ab1
SELECT seq FROM gh_cursor WHERE name = $1;

-- name: gh_cursor_set
-- mirrors sqlite f888ab21ab2c
UPDATE gh_cursor SET seq = $2 WHERE name = $1;

-- Events after the cursor, with the issue of the task they concern (NULL when it is not a GitHub task).
-- name: gh_writeback_candidates
-- mirrors sqlite 6ea9701f6850
SELECT e.seq, e.type, t.repo, CASE WHEN t.source = 'github' THEN t.issue_number END AS issue_number
FROM events e LEFT JOIN tasks t ON t.id = e.target
WHERE e.seq > $1 ORDER BY e.seq LIMIT $2;

-- name: gh_issue_writes_get
-- mirrors sqlite 1430ccff09b4
SELECT * FROM gh_issue_writes WHERE repo = $1 AND issue_number = $2;

-- name: gh_issue_writes_upsert
-- mirrors sqlite c3f400656d65
INSERT INTO gh_issue_writes (repo, issue_number, comment_id, comment_body, labels) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (repo, issue_number) DO UPDATE SET comment_id = excluded.comment_id,
    comment_body = excluded.comment_body, labels = excluded.labels;

-- ---------------------------------------------------------------- app credentials (manifest flow)

-- name: gh_setup_state_insert
-- mirrors sqlite 89073d4fd7cf
INSERT INTO gh_setup_states (state, expires_at) VALUES ($1, $2);

-- name: gh_setup_state_take
-- mirrors sqlite 71f017a86a95
DELETE FROM gh_setup_states WHERE state = $1 AND expires_at > $2;

-- name: gh_credentials_upsert
-- mirrors sqlite df9f3f705586
INSERT INTO gh_app_credentials (id, app_id, slug, html_url, private_key, webhook_secret, client_id, client_secret,
                                created_at)
VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET app_id = excluded.app_id, slug = excluded.slug, html_url = excluded.html_url,
    private_key = excluded.private_key, webhook_secret = excluded.webhook_secret, client_id = excluded.client_id,
    client_secret = excluded.client_secret, created_at = excluded.created_at;

-- name: gh_credentials_get
-- mirrors sqlite 5870c3346c11
SELECT * FROM gh_app_credentials WHERE id = 1;
