-- Mirrors migrations/sqlite/026_offline_holding.sql: the offline workers that still hold leases, kept apart, so
-- that every write transaction's anything_due does not walk every offline worker the pool ever had.
ALTER TABLE workers ADD COLUMN offline_holding integer NOT NULL DEFAULT 0;
UPDATE workers SET offline_holding = 1
WHERE status = 'offline' AND EXISTS (SELECT 1 FROM leases l WHERE l.worker_id = workers.id AND l.state = 'active');
DROP INDEX workers_offline;
CREATE INDEX workers_offline_holding ON workers (last_heartbeat) WHERE status = 'offline' AND offline_holding = 1;
