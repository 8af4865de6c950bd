-- Mirrors migrations/sqlite/006_head_start.sql.
CREATE INDEX tasks_ready_urgent ON tasks (priority, updated_at) WHERE status = 'ready';
