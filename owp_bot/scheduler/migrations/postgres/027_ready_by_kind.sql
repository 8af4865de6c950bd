-- Mirrors migrations/sqlite/027_ready_by_kind.sql: ready_candidate's second way, in a repo whose first ready tasks
-- do not fit the worker, looks only at the trust tiers and skill lists the worker fits. (A skill list is at most
-- 20 skills of at most 50 ASCII characters: far below a B-tree entry's limit.)
CREATE INDEX tasks_ready_by_kind ON tasks (repo, min_trust, required_skills, priority DESC, created_at, id)
    WHERE status = 'ready';
