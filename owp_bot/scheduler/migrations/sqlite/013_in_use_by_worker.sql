-- Nothing to change on SQLite: it looks the in-flight statuses up in tasks_by_worker (worker_id, status) one by
-- one, so a worker's load never reads its finished tasks. PostgreSQL 15 filters them instead
-- (migrations/postgres/013).
SELECT 1;
