-- Mirrors migrations/sqlite/025_ready_by_repo.sql: ready_candidate's second way walks each repo's ready tasks in
-- the order of tasks_ready, which tasks_by_repo now gives after (repo, status). (PostgreSQL reads a task's row
-- for its other columns in any case: index-only scans need all-visible pages, which those of tasks rarely are.)
DROP INDEX tasks_by_repo;
CREATE INDEX tasks_by_repo ON tasks (repo, status, priority DESC, created_at, id);
