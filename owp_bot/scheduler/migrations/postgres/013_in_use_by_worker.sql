-- A worker's load (tasks and points in use: worker_claimant, worker_load, the rival check) counts its tasks in
-- flight. PostgreSQL 15 reads tasks_by_worker (worker_id, status) by worker_id alone and filters the statuses
-- row by row, so the count walked every task the worker ever finished (a long-lived worker's whole history:
-- 125 pages for 200 tasks in the benchmark). This index holds only the tasks in flight, with their points.
CREATE INDEX tasks_in_use_by_worker ON tasks (worker_id) INCLUDE (estimate_points)
WHERE status IN ('offered', 'leased', 'in_progress', 'blocked');
