-- ready_candidate's second way (sql/sqlite/core.sql) walks each repo's ready tasks in the order of tasks_ready:
-- tasks_by_repo gets that order after (repo, status), which every query it served before still leads with, and
-- the columns task_fits reads, so that a walk past tasks that do not fit reads no table rows (as tasks_ready
-- since migration 012). An entry moves whenever a task's status changes, as it did before (and now also when its
-- priority, area, size or trust is edited, which is rare): no index more to keep on the hot path.
DROP INDEX tasks_by_repo;
CREATE INDEX tasks_by_repo ON tasks (repo, status, priority DESC, created_at, id, area, estimate_points, min_trust,
                                     updated_at);
