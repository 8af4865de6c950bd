-- Mirrors migrations/sqlite/024_active_by_worker.sql: every query of a worker's leases asks for its active ones,
-- so their index holds those alone. (Its tasks in flight have had their own index since migration 013;
-- tasks_by_worker stays for the task list's worker filter.)
DROP INDEX leases_by_worker;
CREATE INDEX leases_active_by_worker ON leases (worker_id) WHERE state = 'active';
