-- Named statements of trust, reputation, analytics and retention (issue 3). Prefixes: rep_, an_, ret_.

-- ---------------------------------------------------------------- reputation

-- One worker's outcome counts, kept by the trigger events_count_outcomes (migration 005); see docs/protocol.md
-- "Reputation".
-- name: rep_outcomes_get
SELECT * FROM worker_outcomes WHERE worker_id = ?1;

-- name: rep_outcomes_page
-- A page of workers in the order and with the cursor of workers_list, each with its counts (none yet: NULL).
SELECT w.id, w.trust_tier, o.completed, o.expired, o.released, o.declined, o.merged, o.closed_unmerged,
       o.approved, o.changes
FROM workers w LEFT JOIN worker_outcomes o ON o.worker_id = w.id
WHERE w.id > ?1 ORDER BY w.id LIMIT ?2;

-- name: rep_review_due
SELECT * FROM workers INDEXED BY rep_workers_review WHERE rep_review = 1;

-- name: rep_review_done
UPDATE workers SET rep_review = 0 WHERE id = ?1;

-- name: rep_worker_set_tier
UPDATE workers SET trust_tier = ?2 WHERE id = ?1;

-- name: rep_worker_tier_bases
-- An admin set the tier: the automatic rules count merged PRs (?2) and expired leases (?3) from here on.
UPDATE workers SET tier_merged_base = ?2, tier_expired_base = ?3 WHERE id = ?1;

-- name: rep_repo_set_sensitive
UPDATE repos SET sensitive_areas = ?2 WHERE id = ?1;

-- ---------------------------------------------------------------- retention

-- name: ret_delete_events
DELETE FROM events WHERE ts < ?1;

-- name: ret_delete_samples
DELETE FROM an_budget_samples WHERE ts < ?1;

-- ---------------------------------------------------------------- analytics
-- ?1 repo (NULL: the whole pool), ?2 period start, ?3 period end.

-- Per repo and for the pool, each on its own covering index (one statement with an OR picks one index for both).
-- name: an_type_counts_repo
SELECT type, count(*) AS n FROM events INDEXED BY an_events_repo_ts_type
WHERE repo = ?1 AND ts >= ?2 AND ts <= ?3 GROUP BY type;

-- name: an_type_counts_pool
SELECT type, count(*) AS n FROM events INDEXED BY an_events_ts_type WHERE ts >= ?1 AND ts <= ?2 GROUP BY type;

-- name: an_closed_unmerged
SELECT count(*) AS n FROM events INDEXED BY an_events_ts_type
WHERE type = 'task.ready' AND ts >= ?2 AND ts <= ?3 AND (?1 IS NULL OR repo = ?1)
  AND json_extract(details, '$.previous') = 'pr_opened';

-- Lease granted -> PR opened, for leases that reached a PR in the period (not those voided since: no PR).
-- name: an_lease_to_pr
SELECT avg(e.ts - l.granted_at) AS seconds FROM events e INDEXED BY an_events_ts_type
JOIN leases l ON l.id = json_extract(e.details, '$.lease_id') AND l.state = 'completed'
WHERE e.type = 'lease.completed' AND e.ts >= ?2 AND e.ts <= ?3 AND (?1 IS NULL OR e.repo = ?1);

-- Task created -> merged, for tasks merged in the period.
-- name: an_time_to_merge
SELECT avg(e.ts - t.created_at) AS seconds FROM events e INDEXED BY an_events_ts_type
JOIN tasks t ON t.id = e.target
WHERE e.type = 'task.merged' AND e.ts >= ?2 AND e.ts <= ?3 AND (?1 IS NULL OR e.repo = ?1);

-- Lease time inside the period and the workers who held leases; ?4: earliest grant that can still be
-- active in the period (start - lease cap).
-- name: an_busy
SELECT coalesce(sum(min(coalesce(l.ended_at, ?3), ?3) - max(l.granted_at, ?2)), 0) AS busy_seconds,
       count(DISTINCT l.worker_id) AS workers
FROM leases l INDEXED BY an_leases_granted JOIN tasks t ON t.id = l.task_id
WHERE l.granted_at >= ?4 AND l.granted_at < ?3 AND coalesce(l.ended_at, ?3) > ?2
  AND (?1 IS NULL OR t.repo = ?1);

-- name: an_budget_summary
SELECT count(*) AS samples, coalesce(sum(in_flight >= max_open_prs), 0) AS saturated,
       coalesce(sum(ready > 0 AND in_flight < max_open_prs), 0) AS waiting
FROM an_budget_samples WHERE ts >= ?2 AND ts <= ?3 AND (?1 IS NULL OR repo = ?1);

-- name: an_budget_sample
-- A row per repo at ?1, unless the pool took a sample after ?2 (every replica samples on its own timer; writes run
-- one at a time, so the later one finds the earlier one's sample).
INSERT OR REPLACE INTO an_budget_samples (repo, ts, in_flight, max_open_prs, ready)
SELECT r.id, ?1, r.in_flight + r.external_open_prs, r.max_open_prs,
       (SELECT count(*) FROM tasks t WHERE t.repo = r.id AND t.status = 'ready')
FROM repos r
WHERE NOT EXISTS (SELECT 1 FROM an_budget_samples WHERE ts > ?2);

-- Per-bucket counts for charts; ?4 bucket width in seconds. Buckets start at ?2. Each branch of the union
-- runs on its own index: the repo's, or the time range of the pool.
-- name: an_series
SELECT CAST((ts - ?2) / ?4 AS INTEGER) AS bucket,
       sum(type = 'task.merged') AS tasks_completed,
       sum(type = 'lease.granted') AS leases_granted,
       sum(type = 'lease.expired') AS leases_expired,
       sum(type = 'task.merged') AS prs_merged,
       sum(type = 'task.ready' AND json_extract(details, '$.previous') = 'pr_opened') AS prs_closed,
       sum(type = 'offer.created') AS offers_made,
       sum(type = 'offer.accepted') AS offers_accepted
FROM (
  SELECT ts, type, details FROM events INDEXED BY an_events_repo_ts_type WHERE ?1 IS NOT NULL AND repo = ?1
    AND ts >= ?2 AND ts <= ?3
  UNION ALL
  SELECT ts, type, details FROM events INDEXED BY an_events_ts_type WHERE ?1 IS NULL AND ts >= ?2 AND ts <= ?3)
WHERE type IN ('task.merged', 'lease.granted', 'lease.expired', 'task.ready', 'offer.created', 'offer.accepted')
GROUP BY bucket ORDER BY bucket;

-- ---------------------------------------------------------------- metrics

-- name: an_event_counts_since
SELECT type, count(*) AS n FROM events WHERE seq > ?1 AND seq <= ?2
  AND type IN ('lease.granted', 'lease.expired', 'offer.created', 'offer.accepted', 'offer.rejected',
               'offer.expired')
GROUP BY type;

-- name: an_task_status_counts
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: an_workers_online
SELECT count(*) AS n FROM workers WHERE status NOT IN ('offline') AND last_heartbeat >= ?1;
