-- The offline workers that still hold leases, kept apart. Every write transaction asks whether one of them is past
-- its grace (anything_due), and found out by walking every offline worker (workers_offline): a worker who stops
-- calling in stays offline for good, so that walk grew with the pool's history (731 µs at 10,000 offline workers,
-- bench/RESULTS.md, fifteenth session). A worker is marked when it goes offline holding a lease (worker_set_offline,
-- the only way a worker goes offline), and unmarked once its leases are lapsed (workers_offline_released); an offline
-- worker is granted nothing, so only those marked can hold a lease while offline.
ALTER TABLE workers ADD COLUMN offline_holding INTEGER NOT NULL DEFAULT 0;
UPDATE workers SET offline_holding = 1
WHERE status = 'offline' AND EXISTS (SELECT 1 FROM leases l WHERE l.worker_id = workers.id AND l.state = 'active');
DROP INDEX workers_offline;
CREATE INDEX workers_offline_holding ON workers (last_heartbeat) WHERE status = 'offline' AND offline_holding = 1;
