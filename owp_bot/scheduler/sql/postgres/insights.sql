-- Named statements of trust, reputation, analytics and retention on PostgreSQL: the names of
-- sql/sqlite/insights.sql, $1..$n in the same order. `(details::jsonb ->> 'key')` reads what SQLite's
-- json_extract(details, '$.key') reads (and matches the expression indexes of 003_insights.sql);
-- `count(*) FILTER (WHERE …)` counts what SQLite's sum(condition) counts.

-- ---------------------------------------------------------------- reputation

-- One worker's outcome counts, kept by the trigger events_count_outcomes (migration 005); see docs/protocol.md
-- "Reputation".
-- name: rep_outcomes_get
-- mirrors sqlite 560b97425b47
SELECT * FROM worker_outcomes WHERE worker_id = $1;

-- name: rep_outcomes_page
-- mirrors sqlite da87e105bcf5
SELECT w.id, w.trust_tier, o.completed, o.expired, o.released, o.declined, o.merged, o.closed_unmerged,
       o.approved, o.changes
FROM workers w LEFT JOIN worker_outcomes o ON o.worker_id = w.id
WHERE w.id > $1 ORDER BY w.id LIMIT $2;

-- name: rep_review_due
-- mirrors sqlite ccbbb49b4e6e
SELECT * FROM workers WHERE rep_review = 1;

-- name: rep_review_done
-- mirrors sqlite 468a21c8cb1c
UPDATE workers SET rep_review = 0 WHERE id = $1;

-- name: rep_worker_set_tier
-- mirrors sqlite e90dcefcd982
UPDATE workers SET trust_tier = $2 WHERE id = $1;

-- name: rep_worker_tier_bases
-- mirrors sqlite 34a788a58a6d
UPDATE workers SET tier_merged_base = $2, tier_expired_base = $3 WHERE id = $1;

-- name: rep_repo_set_sensitive
-- mirrors sqlite 6fe838157ac2
UPDATE repos SET sensitive_areas = $2 WHERE id = $1;

-- ---------------------------------------------------------------- retention

-- name: ret_delete_events
-- mirrors sqlite 38aa7df37f5b
DELETE FROM events WHERE ts < $1;

-- name: ret_delete_samples
-- mirrors sqlite 2933e6805963
DELETE FROM an_budget_samples WHERE ts < $1;

-- ---------------------------------------------------------------- analytics
-- $1 repo (NULL: the whole pool), $2 period start, $3 period end.

-- name: an_type_counts_repo
-- mirrors sqlite 3d122ec221fa
SELECT type, count(*) AS n FROM events WHERE repo = $1 AND ts >= $2::float8 AND ts <= $3::float8 GROUP BY type;

-- name: an_type_counts_pool
-- mirrors sqlite 9c349c8b7e2a
SELECT type, count(*) AS n FROM events WHERE ts >= $1::float8 AND ts <= $2::float8 GROUP BY type;

-- name: an_closed_unmerged
-- mirrors sqlite 9191fd803ec8
SELECT count(*) AS n FROM events
WHERE type = 'task.ready' AND ts >= $2::float8 AND ts <= $3::float8 AND ($1::text IS NULL OR repo = $1::text)
  AND (details::jsonb ->> 'previous') = 'pr_opened';

-- Lease granted -> PR opened, for leases that reached a PR in the period (not those voided since: no PR).
-- name: an_lease_to_pr
-- mirrors sqlite d69c2a90e5e1
SELECT avg(e.ts - l.granted_at) AS seconds FROM events e
JOIN leases l ON l.id = (e.details::jsonb ->> 'lease_id') AND l.state = 'completed'
WHERE e.type = 'lease.completed' AND e.ts >= $2::float8 AND e.ts <= $3::float8
  AND ($1::text IS NULL OR e.repo = $1::text);

-- Task created -> merged, for tasks merged in the period.
-- name: an_time_to_merge
-- mirrors sqlite 71df2d558b8b
SELECT avg(e.ts - t.created_at) AS seconds FROM events e
JOIN tasks t ON t.id = e.target
WHERE e.type = 'task.merged' AND e.ts >= $2::float8 AND e.ts <= $3::float8
  AND ($1::text IS NULL OR e.repo = $1::text);

-- Lease time inside the period and the workers who held leases; $4: earliest grant that can still be
-- active in the period (start - lease cap).
-- name: an_busy
-- mirrors sqlite 859c6a3173b0
SELECT coalesce(sum(least(coalesce(l.ended_at, $3::float8), $3::float8) - greatest(l.granted_at, $2::float8)), 0)
         AS busy_seconds,
       count(DISTINCT l.worker_id) AS workers
FROM leases l JOIN tasks t ON t.id = l.task_id
WHERE l.granted_at >= $4::float8 AND l.granted_at < $3::float8 AND coalesce(l.ended_at, $3::float8) > $2::float8
  AND ($1::text IS NULL OR t.repo = $1::text);

-- name: an_budget_summary
-- mirrors sqlite 499f4474ea0f
SELECT count(*) AS samples, count(*) FILTER (WHERE in_flight >= max_open_prs) AS saturated,
       count(*) FILTER (WHERE ready > 0 AND in_flight < max_open_prs) AS waiting
FROM an_budget_samples
WHERE ts >= $2::float8 AND ts <= $3::float8 AND ($1::text IS NULL OR repo = $1::text);

-- name: an_budget_sample
-- mirrors sqlite 059b3654c644
INSERT INTO an_budget_samples (repo, ts, in_flight, max_open_prs, ready)
SELECT r.id, $1::float8, r.in_flight + r.external_open_prs, r.max_open_prs,
       (SELECT count(*) FROM tasks t WHERE t.repo = r.id AND t.status = 'ready')
FROM repos r
WHERE NOT EXISTS (SELECT 1 FROM an_budget_samples WHERE ts > $2::float8)
ON CONFLICT (repo, ts) DO UPDATE SET in_flight = excluded.in_flight, max_open_prs = excluded.max_open_prs,
    ready = excluded.ready;

-- Per-bucket counts for charts; $4 bucket width in seconds. Buckets start at $2 (trunc: SQLite's CAST).
-- name: an_series
-- mirrors sqlite 6987aaed5bed
SELECT trunc((ts - $2::float8) / $4::float8)::integer AS bucket,
       count(*) FILTER (WHERE type = 'task.merged') AS tasks_completed,
       count(*) FILTER (WHERE type = 'lease.granted') AS leases_granted,
       count(*) FILTER (WHERE type = 'lease.expired') AS leases_expired,
       count(*) FILTER (WHERE type = 'task.merged') AS prs_merged,
       count(*) FILTER (WHERE type = 'task.ready' AND (details::jsonb ->> 'previous') = 'pr_opened') AS prs_closed,
       count(*) FILTER (WHERE type = 'offer.created') AS offers_made,
       count(*) FILTER (WHERE type = 'offer.accepted') AS offers_accepted
FROM events
WHERE ts >= $2::float8 AND ts <= $3::float8 AND ($1::text IS NULL OR repo = $1::text)
  AND type IN ('task.merged', 'lease.granted', 'lease.expired', 'task.ready', 'offer.created', 'offer.accepted')
GROUP BY bucket ORDER BY bucket;

-- ---------------------------------------------------------------- metrics

-- name: an_event_counts_since
-- mirrors sqlite 71892a0d5522
SELECT type, count(*) AS n FROM events WHERE seq > $1 AND seq <= $2
  AND type IN ('lease.granted', 'lease.expired', 'offer.created', 'offer.accepted', 'offer.rejected',
               'offer.expired')
GROUP BY type;

-- name: an_task_status_counts
-- mirrors sqlite 0f7ac2806b1d
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: an_workers_online
-- mirrors sqlite 16d2633f4c55
SELECT count(*) AS n FROM workers WHERE status NOT IN ('offline') AND last_heartbeat >= $1;
