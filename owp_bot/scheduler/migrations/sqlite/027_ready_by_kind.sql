-- ready_candidate's second way (sql/sqlite/core.sql), in a repo whose first ready tasks do not fit the worker,
-- looks only at the trust tiers and skill lists of that repo's ready tasks that the worker fits: this index holds
-- the ready tasks by (repo, tier, skill list), then in the order of tasks_ready with the columns task_fits reads
-- (and status, which SQLite 3.40 needs to read the index alone: migration 028).
-- Without it, the request of a worker who fits none of a repo's tasks walked them all (bench/RESULTS.md). Like
-- tasks_ready, an entry comes and goes when a task becomes ready or stops being ready.
CREATE INDEX tasks_ready_by_kind ON tasks (repo, min_trust, required_skills, priority DESC, created_at, id, area,
                                           estimate_points, updated_at, status) WHERE status = 'ready';
