-- A worker's active leases and tasks in flight, indexed alone. Every query by worker asks only for those (its load,
-- its leases, the offline sweep), but the full indexes also held every lease and task the worker ever finished, so
-- each lease moved an entry within that worker's own stretch of pages, and each COMMIT wrote one page per worker
-- it touched to the WAL. The partial indexes hold a few entries per worker, on a page or two for the whole pool:
-- 2.3 fewer WAL pages per lease of 9.6 (bench/RESULTS.md, eleventh session).
DROP INDEX leases_by_worker;
CREATE INDEX leases_active_by_worker ON leases (worker_id, state) WHERE state = 'active';
DROP INDEX tasks_by_worker;
CREATE INDEX tasks_in_use_by_worker ON tasks (worker_id, status)
WHERE status IN ('offered', 'leased', 'in_progress', 'blocked');
